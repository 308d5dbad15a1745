package planner

// The per-node plan, rules 20-27 of the upstream DaemonSet controller.
//
// Invariants (what every plan guarantees, whatever the snapshot):
//   - A node that should run the agent and has no pod at all gets exactly one create.
//   - Without surge, a node never gets a create while it still has a pod, even a terminating one: at
//     most one agent pod per node exists at any time, so two agents never compete for host ports,
//     sockets or files.
//   - With surge, a node keeps at most one old and one new pod; the old one goes only once the new one
//     is available (or the old one is not Ready anyway).
//   - A terminating pod is never deleted again and never counts as running.
//   - A node whose untolerated NoExecute taint or failed selector says the agent must not continue
//     loses all its pods at once; an untolerated NoSchedule taint only stops new pods.
//   - A failed pod is deleted at most once per backoff period of its node, and while the backoff runs
//     the node gets no new pod, whatever the strategy (with surge too, and from the rolling update):
//     a pod the kubelet rejects at admission would otherwise be replaced, fail and pile up in a loop.
//     It is replaced on a later pass (in the same pass with surge).
//   - A pod the kubelet terminated for a graceful node shutdown is kept, and holds its node's
//     replacement, while the node is not Ready; once it is Ready, it is a failed pod like any other.
//   - Pods whose node is gone are deleted; they are not counted in status.
//   - Deletes are capped per pass at BurstReplicas, creates at CreateBurst, or either at the rolling
//     update's budget (maxUnavailable, maxSurge) when that is larger; the rest waits for the next pass.
//   - The rolling update runs only in a pass where this per-node step deleted nothing, so its
//     budget is always computed on a settled world: the step's creates go to nodes without a live
//     pod, which the budget counts as unavailable whether or not their pod is being created.
//   - Output is deterministic: nodes are visited in name order.

import (
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
)

// BurstReplicas caps the deletes of one pass, as upstream's burstReplicas does, unless the rolling
// update's budget is larger: see burst.
const BurstReplicas = 250

// CreateBurst caps the creates of one pass, unless the rolling update's budget is larger. It is ten
// times upstream's 250: creates go out through a slow-start window (the controller's apply), so a
// template that cannot be created costs one call whatever the cap, and what a cap of 250 cost was the
// turn between passes (the next pass waits until the cache holds every pod the last one created): a
// quarter of the time to give 1,000 new nodes a pod. The cap keeps a pass of a large cluster's first
// coverage to seconds (2,500 creates at a few hundred a second), well inside the reconcile timeout.
const CreateBurst = 2500

// nodeView is one node of the snapshot with the set's pods on it.
type nodeView struct {
	name string
	// node is nil when pods target a node that does not exist (any more).
	node      *corev1.Node
	placement Placement
	// pods are the set's pods on the node, oldest first, without terminal pods that are already
	// being deleted (rule 20).
	pods []*corev1.Pod
	// facts are what the steps of the pass read of the pods, in the same order.
	facts []podFacts
	// override is set when the set has overrides (or a pod carries a spec hash): what the node should
	// run, and which of its pods are stale (overrides.go).
	override *nodeOverride
	// target is the hash of the revision the node should run when a canary says it is not the current
	// one; held: a canary holds the node, so any revision but the one under test counts as updated.
	target string
	held   bool
	// specHash: one of the pods carries a spec hash label; terminating: one of them is terminating
	// (podTerminating); tainted: the node has taints (the gate reads them only then).
	specHash    bool
	terminating bool
	tainted     bool
}

// podFacts are what the steps of a pass read of a pod, gathered once per pass: at 65,000 nodes, each
// further look at a pod object is a cache miss.
type podFacts struct {
	// hash is the pod's revision hash label (renderOverrides may set it to the current hash, see
	// there): a pass looks at it several times, and a label lookup per pod and look was a good part of
	// a pass over thousands of pods.
	hash    string
	created time.Time
	// ready is the pod's Ready condition; nil without one.
	ready *corev1.PodCondition
}

// available: the i-th pod of the node is available (IsPodAvailable).
func (w *world) available(v *nodeView, i int) bool {
	return readyAvailable(v.facts[i].ready, w.in.Set.Spec.MinReadySeconds, w.in.Now)
}

// podTerminating is isTerminating of the i-th pod, without a look at the pod on a node that has no
// terminating pod: the loops over every pod of a pass then read the view alone.
func (v *nodeView) podTerminating(i int) bool {
	return v.terminating && isTerminating(v.pods[i])
}

// nodeOverride is what a node should run when the set has overrides (or a pod carries a spec hash);
// stale marks the node's pods whose spec hash differs from want's.
type nodeOverride struct {
	want  NodeOverride
	stale []bool
}

// updated: the i-th pod of the node carries the revision the node should run: the current
// revision's hash (IsPodUpdated), unless a canary says otherwise.
func (w *world) updated(v *nodeView, i int) bool {
	switch {
	case v.held:
		return v.facts[i].hash != w.in.Hash
	case v.target != "":
		return v.facts[i].hash == v.target
	}
	return w.current(v, i)
}

// current: the i-th pod of the node carries the current revision's hash, or a spec hash equal to its
// node's (it is then relabelled, see renderOverrides), and no stale spec hash.
func (w *world) current(v *nodeView, i int) bool {
	return w.in.Hash != "" && v.facts[i].hash == w.in.Hash && (v.override == nil || !v.override.stale[i])
}

// world is the snapshot arranged by node, in node-name order.
type world struct {
	in       Input
	strategy strategy
	nodes    []*nodeView
	// partitioned names the eligible nodes the rollout leaves alone; firstPartitioned is the first of
	// them by name.
	partitioned      map[string]bool
	firstPartitioned string
	// skipped are the unhealthy nodes the rolling update leaves out (unhealthy.go), with their reason.
	skipped map[string]NodeReason
	// relabels are the updated pods that carry an older revision hash (renderOverrides).
	relabels []Relabel
	// canary is the canary's verdict for this pass; nil without a canary.
	canary *canaryPass
}

func newWorld(in Input) *world {
	placer := PlacerFor(in.Set)
	// The views, and below the pods and pod facts of every node, are carved out of one allocation each:
	// at 65,000 nodes, an allocation per node and per slice is a good part of a pass.
	views := make([]nodeView, len(in.Nodes))
	// The map of views and the sort by name read the names from one string, where they sit side by
	// side, rather than from 65,000 node objects all over the heap: a comparison of names is then
	// seldom a cache miss.
	var buf strings.Builder
	buf.Grow(16 * len(in.Nodes))
	for i, n := range in.Nodes {
		views[i] = nodeView{name: n.Name, node: n, placement: placer.Place(n), tainted: len(n.Spec.Taints) > 0}
		buf.WriteString(n.Name)
	}
	names := buf.String()
	byName := make(map[string]*nodeView, len(views))
	start := 0
	for i := range views {
		end := start + len(views[i].name)
		byName[names[start:end]] = &views[i]
		start = end
	}
	gone := gatherPods(in.Pods, byName)
	nodes := sortByName(views, names, gone)
	w := &world{in: in, strategy: resolveStrategy(in.Set, countDesired(nodes)), nodes: nodes}
	w.renderOverrides()
	w.partitioned, w.firstPartitioned = w.partitionNodes(w.strategy.partition)
	w.skipped = w.skippedNodes()
	w.canary = w.evaluateCanary()
	return w
}

// gatherPods gives each view its pods, oldest first, without terminal pods already being deleted, and
// what the pass reads of them (podFacts, specHash, terminating), and returns the views of the nodes
// only pods name (gone), which it adds to byName.
//
// Each pod is read once, here, while it is at hand. The views' pods and facts are cut out of one
// allocation each, in the order the pods come: a node's first pod takes the next place; a further pod
// moves the node's pods to the end, with room for twice as many (few nodes have more than one pod).
func gatherPods(pods []*corev1.Pod, byName map[string]*nodeView) []*nodeView {
	var gone, several []*nodeView
	podSlab, factSlab := make([]*corev1.Pod, 0, len(pods)), make([]podFacts, 0, len(pods))
	for i, pod := range pods {
		if isTerminal(pod) && isTerminating(pod) {
			continue
		}
		name, ok := TargetNodeName(pod)
		if !ok {
			continue
		}
		v := byName[name]
		if v == nil {
			v = &nodeView{name: name}
			byName[name] = v
			gone = append(gone, v)
		}
		if len(v.pods) == cap(v.pods) {
			if len(v.pods) == 1 {
				several = append(several, v)
			}
			n := max(1, 2*len(v.pods))
			if len(podSlab)+n > cap(podSlab) {
				// Used up by nodes of several pods: room for them and the pods still to come.
				podSlab, factSlab = make([]*corev1.Pod, 0, n+len(pods)-i), make([]podFacts, 0, n+len(pods)-i)
			}
			start := len(podSlab)
			podSlab, factSlab = podSlab[:start+n], factSlab[:start+n]
			v.pods = append(podSlab[start:start:start+n], v.pods...)
			v.facts = append(factSlab[start:start:start+n], v.facts...)
		}
		v.pods = append(v.pods, pod)
		v.facts = append(v.facts, v.read(pod))
	}
	for _, v := range several {
		SortOldestFirst(v.pods)
		for i, pod := range v.pods {
			v.facts[i] = v.read(pod)
		}
	}
	return gone
}

// read returns what the pass reads of one of the view's pods, and notes on the view whether it carries
// a spec hash label (renderOverrides asks) and whether it is terminating (podTerminating).
func (v *nodeView) read(pod *corev1.Pod) podFacts {
	if _, ok := pod.Labels[PodSpecHashLabel]; ok {
		v.specHash = true
	}
	if isTerminating(pod) {
		v.terminating = true
	}
	return podFacts{hash: pod.Labels[nasv1alpha1.ControllerRevisionHashLabel], created: pod.CreationTimestamp.Time, ready: readyCondition(pod)}
}

func countDesired(nodes []*nodeView) int {
	n := 0
	for _, v := range nodes {
		if v.node != nil && v.placement.ShouldRun {
			n++
		}
	}
	return n
}

// Compute returns the plan for a snapshot.
func Compute(in Input) Plan {
	w := newWorld(in)
	p := Plan{}
	req := requeue{now: in.Now}
	w.manage(&p, &req)
	w.requeueUnhealthy(&req)
	if len(p.Deletes) == 0 {
		// manage's creates go to nodes without a live pod, which the budget counts as unavailable
		// already: they change nothing the rolling update decides on, so it runs in the same pass.
		w.rollingUpdate(&p)
	}
	capBurst(&p, w.strategy)
	p.Strategy = w.exportStrategy()
	gateCreates(&p, in, &req)
	w.exportOverrides(&p)
	p.Status, p.Nodes, p.Unavailable = w.status(&req)
	p.CurrentRevision = w.currentRevision()
	p.Rollout = w.rollout(p.Strategy.ProgressDeadline)
	p.Gate = w.gate(&req)
	w.canaryPlan(&p, &req)
	if !p.Rollout.Deadline.IsZero() && in.Now.Before(p.Rollout.Deadline) {
		// A second late, so that the pass that wakes up finds the deadline passed.
		req.at(p.Rollout.Deadline.Add(time.Second))
	}
	p.RequeueAfter = req.after()
	return p
}

// manage applies rules 21-27 to every node.
func (w *world) manage(p *Plan, req *requeue) {
	for _, v := range w.nodes {
		switch {
		case v.node == nil:
			w.deleteFromGoneNode(v, p)
		case v.placement.ShouldRun && len(v.pods) == 0:
			w.create(p, v.name)
		case v.placement.ShouldContinueRunning:
			w.manageRunning(v, p, req)
		default:
			deleteLive(v, v.pods, DeleteNodeIneligible, p)
		}
	}
}

// manageRunning handles a node that may keep its pods: terminal pods go, duplicates are pruned.
func (w *world) manageRunning(v *nodeView, p *Plan, req *requeue) {
	var running []*corev1.Pod
	backoff := false
	for _, pod := range v.pods {
		switch {
		case isTerminating(pod):
			// Being deleted already: neither deleted again nor counted as running.
		case keptForShutdown(pod, v.node):
			// Terminated by the kubelet for a node shutdown: it stays, and holds the node's
			// replacement, until the node is Ready again; a new pod would only fail the same way.
			backoff = true
		case pod.Status.Phase == corev1.PodFailed:
			if until, ok := w.backoffUntil(v); ok {
				// It stays, and holds the node's replacement, until the backoff ends. Upstream, with
				// surge, creates a replacement next to it at once: when the kubelet rejects the pod at
				// admission, every replacement fails too and failed pods pile up.
				req.at(until)
				backoff = true
				continue
			}
			p.Deletes = append(p.Deletes, Deletion{Pod: pod, Node: v.name, Reason: DeleteFailed})
		case pod.Status.Phase == corev1.PodSucceeded:
			p.Deletes = append(p.Deletes, Deletion{Pod: pod, Node: v.name, Reason: DeleteSucceeded})
		default:
			running = append(running, pod)
		}
	}
	if !w.strategy.surge {
		// Rule 23: keep the oldest, delete the rest. With nothing running (say the only pod is
		// terminating), wait: the replacement comes once the node is empty.
		deleteLive(v, tail(running), DeleteDuplicate, p)
		return
	}
	if backoff && len(running) == 0 {
		return
	}
	w.manageSurge(v, running, p, req)
}

// manageSurge is rule 24: with surge, a node may hold one old and one new pod while the new one
// becomes available.
func (w *world) manageSurge(v *nodeView, running []*corev1.Pod, p *Plan, req *requeue) {
	if len(running) == 0 {
		if v.placement.ShouldRun {
			w.create(p, v.name)
		}
		return
	}
	if len(running) == 1 {
		return
	}
	var newest, oldest *corev1.Pod
	for _, pod := range running {
		switch updated := w.podUpdated(v, pod); {
		case updated && newest == nil:
			newest = pod
		case !updated && oldest == nil:
			oldest = pod
		default:
			p.Deletes = append(p.Deletes, Deletion{Pod: pod, Node: v.name, Reason: DeleteDuplicate})
		}
	}
	if newest == nil || oldest == nil {
		return
	}
	minReady := w.in.Set.Spec.MinReadySeconds
	switch {
	case !IsPodReady(oldest):
		p.Deletes = append(p.Deletes, Deletion{Pod: oldest, Node: v.name, Reason: DeleteSurgeReplaced})
	case IsPodAvailable(newest, minReady, w.in.Now):
		p.Deletes = append(p.Deletes, Deletion{Pod: oldest, Node: v.name, Reason: DeleteSurgeReplaced})
	default:
		if at := availableAt(newest, minReady); !at.IsZero() {
			req.at(at)
		}
	}
}

// create adds a create on the node to the plan, unless it has as many as the pass may issue already
// (capBurst): a list of every node without a pod, cut to its first CreateBurst once made, is a large
// allocation on a large cluster that gets its first pods.
func (w *world) create(p *Plan, node string) {
	if len(p.Creates) < w.strategy.createBurst() {
		p.Creates = append(p.Creates, node)
	}
}

// podUpdated: the pod, one of the node's, carries the revision the node should run (see updated).
func (w *world) podUpdated(v *nodeView, pod *corev1.Pod) bool {
	for i, p := range v.pods {
		if p == pod {
			return w.updated(v, i)
		}
	}
	return false
}

// deleteFromGoneNode deletes the pods of a node that no longer exists. Upstream deletes only the
// unbound ones and leaves bound pods to the pod garbage collector; we delete both (a graceful delete;
// the pod GC still force-removes pods no kubelet confirms), so a removed node's agent pods go at once.
func (w *world) deleteFromGoneNode(v *nodeView, p *Plan) {
	deleteLive(v, v.pods, DeleteNodeGone, p)
}

// deleteLive deletes the pods that are not already terminating.
func deleteLive(v *nodeView, pods []*corev1.Pod, reason DeleteReason, p *Plan) {
	for _, pod := range pods {
		if !isTerminating(pod) {
			p.Deletes = append(p.Deletes, Deletion{Pod: pod, Node: v.name, Reason: reason})
		}
	}
}

func tail(pods []*corev1.Pod) []*corev1.Pod {
	if len(pods) <= 1 {
		return nil
	}
	return pods[1:]
}

// capBurst keeps at most burst creates and deletes; the rest come on later passes.
func capBurst(p *Plan, s strategy) {
	if n := s.createBurst(); len(p.Creates) > n {
		p.Creates = p.Creates[:n]
	}
	if n := s.burst(); len(p.Deletes) > n {
		p.Deletes = p.Deletes[:n]
	}
}

// burst is how many deletes one pass may issue: BurstReplicas, or the rolling update's budget when
// that is larger. A step of the rollout is then one pass of deletes and one of creates whatever the
// cluster's size: with upstream's fixed 250, a 10% step on 5,000 nodes takes two passes of each, and
// the rollout never uses more than half of the budget the user set.
func (s strategy) burst() int {
	if !s.rollingUpdate {
		return BurstReplicas
	}
	return max(BurstReplicas, s.maxUnavailable, s.maxSurge)
}

// createBurst is how many creates one pass may issue: CreateBurst, or the rolling update's budget
// when that is larger.
func (s strategy) createBurst() int {
	return max(CreateBurst, s.burst())
}

// requeue tracks the earliest moment the world changes without an event.
type requeue struct {
	now      time.Time
	earliest time.Time
}

func (r *requeue) at(t time.Time) {
	if !t.After(r.now) {
		t = r.now
	}
	if r.earliest.IsZero() || t.Before(r.earliest) {
		r.earliest = t
	}
}

func (r *requeue) after() time.Duration {
	if r.earliest.IsZero() {
		return 0
	}
	// Never zero: zero means "nothing pending" to the caller.
	if d := r.earliest.Sub(r.now); d > 0 {
		return d
	}
	return time.Millisecond
}

// strategy is the update strategy resolved against the number of eligible nodes.
type strategy struct {
	rollingUpdate  bool
	surge          bool
	maxSurge       int
	maxUnavailable int
	// paused: replace nothing.
	paused bool
	// partition: how many eligible nodes still running an older template the rollout leaves alone.
	partition int
	// surgeBlockedByHostPort: maxSurge was asked for, but the template binds host ports.
	surgeBlockedByHostPort bool
}

// ResolveStrategy is the set's update strategy resolved against desired eligible nodes, as a plan
// resolves it (without FirstPartitionedNode, which only a plan knows): for consumers that must show
// the budgets or the partition in nodes and must not scale them themselves.
func ResolveStrategy(set *nasv1alpha1.NodeAgentSet, desired int32) Strategy {
	return resolveStrategy(set, int(desired)).export(set)
}

// exportStrategy is the resolved strategy as the plan shows it.
func (w *world) exportStrategy() Strategy {
	out := w.strategy.export(w.in.Set)
	out.FirstPartitionedNode = w.firstPartitioned
	return out
}

func (s strategy) export(set *nasv1alpha1.NodeAgentSet) Strategy {
	spec := set.Spec
	out := Strategy{
		Type:             spec.UpdateStrategy.Type,
		MaxUnavailable:   int32(s.maxUnavailable),
		MaxSurge:         int32(s.maxSurge),
		Surge:            s.surge,
		Paused:           s.paused,
		Partition:        int32(s.partition),
		ProgressDeadline: DefaultProgressDeadline,
		HostPortFallback: s.surgeBlockedByHostPort,
		HostPorts:        HostPorts(&spec.Template.Spec),
	}
	if out.Type == "" {
		out.Type = nasv1alpha1.RollingUpdateStrategyType
	}
	if spec.ProgressDeadlineSeconds != nil {
		out.ProgressDeadline = time.Duration(*spec.ProgressDeadlineSeconds) * time.Second
	}
	return out
}
