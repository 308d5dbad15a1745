package plugin

import (
	"context"
	"sort"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
	"github.com/nodeagentset/nodeagentset/internal/planner"
)

// snapshot is what nodes and why look at: the set, its revisions, every node, the set's pods, and the
// planner's verdict on them, computed by the same code the controller runs.
type snapshot struct {
	set       *nasv1alpha1.NodeAgentSet
	nodes     []*corev1.Node
	hash      string
	revisions map[string]int64
	now       time.Time
	plan      planner.Plan
	// byNode holds the live pods of each target node, oldest first.
	byNode map[string][]*corev1.Pod
}

func (c *clients) snapshot(ctx context.Context, name string) (*snapshot, error) {
	set, err := c.getSet(ctx, name)
	if err != nil {
		return nil, err
	}
	history, err := c.history(ctx, set)
	if err != nil {
		return nil, err
	}
	nodeList, err := c.core.Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	pods, err := c.setPods(ctx, set)
	if err != nil {
		return nil, err
	}
	nodes := make([]*corev1.Node, 0, len(nodeList.Items))
	for i := range nodeList.Items {
		nodes = append(nodes, &nodeList.Items[i])
	}
	return newSnapshot(set, history, nodes, pods, time.Now()), nil
}

func newSnapshot(set *nasv1alpha1.NodeAgentSet, history []*appsv1.ControllerRevision, nodes []*corev1.Node, pods []*corev1.Pod,
	now time.Time) *snapshot {
	s := &snapshot{
		set:       set,
		nodes:     nodes,
		hash:      currentHash(set, history),
		revisions: revisionNumbers(history),
		now:       now,
		byNode:    map[string][]*corev1.Pod{},
	}
	if s.hash == "" {
		s.hash = planner.RevisionHash(set)
	}
	s.plan = planner.Compute(planner.Input{Set: set, Hash: s.hash, Nodes: nodes, Pods: pods, Now: now, Template: templateVerdict(set),
		Gate: gateInput(set), Revisions: knownRevisions(history)})
	for _, pod := range pods {
		// As the planner: a terminal pod that is being deleted is gone already (rule 20).
		terminal := pod.Status.Phase == corev1.PodFailed || pod.Status.Phase == corev1.PodSucceeded
		if terminal && pod.DeletionTimestamp != nil {
			continue
		}
		if name, ok := planner.TargetNodeName(pod); ok {
			s.byNode[name] = append(s.byNode[name], pod)
		}
	}
	for _, list := range s.byNode {
		planner.SortOldestFirst(list)
	}
	sort.Slice(s.nodes, func(i, j int) bool { return s.nodes[i].Name < s.nodes[j].Name })
	return s
}

// nodeReport is one node as the set sees it.
type nodeReport struct {
	name string
	// node is nil when the set's pods target a node that does not exist.
	node      *corev1.Node
	placement planner.Placement
	// pods are the set's live pods on the node, oldest first; pod is the one status looks at.
	pods []*corev1.Pod
	pod  *corev1.Pod
	// healthy: the node should run the agent and its pod is available.
	healthy bool
	// partitioned: the rollout's partition holds the node.
	partitioned bool
	// reason is the planner's reason for a node that is excluded, lacks an available pod, or runs an
	// available pod of an older template.
	reason planner.NodeReason
	// nodePods are all pods bound to the node, of any owner; `why` lists them only for a full node
	// (InsufficientResources), to compare the agent's requests with the node's free allocatable.
	nodePods []*corev1.Pod
	// nodePodsForbidden: the user may not list the pods of every namespace, so nodePods is empty.
	nodePodsForbidden bool
}

// reports returns one report per node, in name order, then one per missing node that pods target.
func (s *snapshot) reports() []*nodeReport {
	out := make([]*nodeReport, 0, len(s.nodes))
	seen := map[string]bool{}
	for _, n := range s.nodes {
		seen[n.Name] = true
		out = append(out, s.report(n.Name, n))
	}
	var gone []string
	for name := range s.byNode {
		if !seen[name] {
			gone = append(gone, name)
		}
	}
	sort.Strings(gone)
	for _, name := range gone {
		out = append(out, s.report(name, nil))
	}
	return out
}

// reportFor returns the report of the named node; nil when the node neither exists nor has pods.
func (s *snapshot) reportFor(name string) *nodeReport {
	for _, n := range s.nodes {
		if n.Name == name {
			return s.report(name, n)
		}
	}
	if len(s.byNode[name]) > 0 {
		return s.report(name, nil)
	}
	return nil
}

func (s *snapshot) report(name string, node *corev1.Node) *nodeReport {
	r := &nodeReport{name: name, node: node, pods: s.byNode[name]}
	if len(r.pods) > 0 {
		r.pod = r.pods[0]
	}
	if node == nil {
		return r
	}
	state, ok := s.plan.Nodes[name]
	if !ok {
		// The plan leaves out only the eligible nodes with an available pod of the current template.
		r.placement = planner.Placement{ShouldRun: true, ShouldContinueRunning: true}
		r.healthy = true
		return r
	}
	r.placement = state.Placement
	if state.Pod != nil {
		r.pod = state.Pod
	}
	r.reason = state.Reason
	r.partitioned = state.Partitioned
	r.healthy = state.Placement.ShouldRun && state.Reason.Code.Outdated()
	return r
}

// updated reports whether a pod runs the current revision: with overrides, whether it equals what its
// node should run (its spec hash is the node's), as the planner decides.
func (s *snapshot) updated(pod *corev1.Pod) bool {
	if spec, ok := pod.Labels[planner.PodSpecHashLabel]; ok {
		if name, ok := planner.TargetNodeName(pod); ok {
			if o, ok := s.plan.Overrides[name]; ok {
				return spec == o.SpecHash
			}
		}
	}
	return planner.IsPodUpdated(pod, s.hash)
}

// available reports whether a pod counts as available for the set's status (a terminating pod that
// is still ready does).
func (s *snapshot) available(pod *corev1.Pod) bool {
	return planner.IsPodAvailable(pod, s.set.Spec.MinReadySeconds, s.now)
}

// revisionOf names a pod's revision: its number, or its hash when no revision has it.
func (s *snapshot) revisionOf(pod *corev1.Pod) (int64, string) {
	hash := pod.Labels[nasv1alpha1.ControllerRevisionHashLabel]
	return s.revisions[hash], hash
}

// templateVerdict is what the set's PodTemplateValid condition says of the current template, as the
// planner takes it: the controller's latest dry-run verdict.
func templateVerdict(set *nasv1alpha1.NodeAgentSet) planner.TemplateVerdict {
	c := meta.FindStatusCondition(set.Status.Conditions, nasv1alpha1.ConditionPodTemplateValid)
	switch {
	case c == nil || c.ObservedGeneration > 0 && c.ObservedGeneration != set.Generation:
		return planner.TemplateVerdict{}
	case c.Status == metav1.ConditionTrue:
		return planner.TemplateVerdict{State: planner.TemplateAccepted}
	case c.Status == metav1.ConditionFalse && c.Reason == nasv1alpha1.ReasonServiceAccountMissing:
		return planner.TemplateVerdict{State: planner.TemplateServiceAccountMissing, Message: c.Message}
	case c.Status == metav1.ConditionFalse:
		return planner.TemplateVerdict{State: planner.TemplateRejected, Message: c.Message}
	}
	return planner.TemplateVerdict{}
}

// gateInput is the controller's verdict on the set's readiness gate key, as its NodeReadinessGate
// condition publishes it: the plugin does not know the controller's allowed prefixes, nor (cheaply)
// the other sets, so it plans as the controller last decided.
func gateInput(set *nasv1alpha1.NodeAgentSet) planner.GateInput {
	g := set.Spec.NodeReadinessGate
	if g == nil {
		return planner.GateInput{}
	}
	c := meta.FindStatusCondition(set.Status.Conditions, nasv1alpha1.ConditionNodeReadinessGate)
	switch {
	case c != nil && c.Reason == nasv1alpha1.ReasonGateKeyNotAllowed:
		// No taint key starts with "/": the planner refuses the key, as the controller did.
		return planner.GateInput{AllowedPrefixes: []string{"/"}}
	case c != nil && c.Reason == nasv1alpha1.ReasonGateKeyConflict:
		return planner.GateInput{AllowedPrefixes: []string{g.TaintKey}, ConflictsWith: "another NodeAgentSet"}
	}
	return planner.GateInput{AllowedPrefixes: []string{g.TaintKey}}
}

// knownRevisions tells the planner which older revisions exist, for a canary to name its stable
// revision as the controller does. The templates stay empty: the plugin creates no pod.
func knownRevisions(history []*appsv1.ControllerRevision) map[string]*corev1.PodTemplateSpec {
	out := make(map[string]*corev1.PodTemplateSpec, len(history))
	for _, cr := range history {
		if hash := cr.Labels[nasv1alpha1.ControllerRevisionHashLabel]; hash != "" {
			out[hash] = &corev1.PodTemplateSpec{}
		}
	}
	return out
}
