package plugin

// Plain-language explanations for `kubectl nas why`. The verdict always comes from the planner's plan:
// each node's typed reason, rendered by the planner; the details that follow switch on the reason's
// code, ask the planner's Placer about one constraint at a time, and read the pod and node.

import (
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/duration"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
	"github.com/nodeagentset/nodeagentset/internal/planner"
)

// explain returns the explanation of a node, one sentence (or indented detail) a line. events are
// recent Warning events about the node's agent pod and the set (for this node), oldest first.
func (s *snapshot) explain(r *nodeReport, events []corev1.Event) []string {
	e := &explainer{s: s, r: r}
	switch {
	case r.node == nil:
		e.line("Node %s does not exist, but agent pod %s still targets it: the controller deletes the pods of nodes that are gone.",
			r.name, r.pod.Name)
	case !r.placement.ShouldRun:
		e.excluded()
	case r.healthy:
		e.healthy()
	default:
		e.unavailable()
	}
	e.override()
	if gate, _ := s.gate(r); gate != "" {
		e.line("Readiness gate %s (%s): %s.", s.set.Spec.NodeReadinessGate.TaintKey, s.plan.Gate.Mode, gate)
	}
	if len(events) > 0 {
		e.line("Recent warnings:")
		for _, ev := range events {
			e.detail("%s ago  %s/%s  %s: %s", ago(s.now, eventTime(ev)), ev.InvolvedObject.Kind, ev.InvolvedObject.Name,
				ev.Reason, strings.TrimSpace(ev.Message))
		}
	}
	return e.lines
}

type explainer struct {
	s     *snapshot
	r     *nodeReport
	lines []string
}

func (e *explainer) line(format string, a ...any) {
	e.lines = append(e.lines, fmt.Sprintf(format, a...))
}

func (e *explainer) detail(format string, a ...any) {
	e.lines = append(e.lines, "  "+fmt.Sprintf(format, a...))
}

func (e *explainer) setName() string {
	return fmt.Sprintf("%s %s/%s", setNoun, e.s.set.Namespace, e.s.set.Name)
}

// excluded explains an ineligible node: the planner's verdict, then every constraint that excludes it.
func (e *explainer) excluded() {
	r := e.r
	e.line("Node %s is not eligible for %s: %s.", r.name, e.setName(), r.placement.Exclusion)
	// The agent's pods also tolerate the set's readiness gate taint.
	spec := e.s.set.Spec.Template.Spec.DeepCopy()
	spec.Tolerations = planner.WithGateToleration(spec.Tolerations, e.s.set)
	for _, d := range exclusionDetails(spec, r.node) {
		e.detail("%s", d)
	}
	if t := firstUntoleratedTaint(spec, r.node); t != nil {
		e.line("To run the agent there, tolerate the taint in spec.template.spec.tolerations, e.g. %s.", tolerationFor(t))
	}
	switch {
	case r.pod == nil:
		e.line("No agent pod of the set is on the node.")
	case r.pod.DeletionTimestamp != nil:
		e.line("Agent pod %s is still on the node and is terminating.", r.pod.Name)
	case r.placement.ShouldContinueRunning:
		e.line("Agent pod %s is still on the node (misscheduled): it may stay, because only NoSchedule taints exclude the node; "+
			"no new pod is created there.", r.pod.Name)
	default:
		e.line("Agent pod %s is still on the node (misscheduled): the controller deletes it.", r.pod.Name)
	}
}

// override says which node override the node's pod is built from, and why the earlier ones did not
// match; nothing for a set without overrides or a node that does not run the agent.
func (e *explainer) override() {
	o, ok := e.s.plan.Overrides[e.r.name]
	if !ok {
		return
	}
	if o.Name == "" {
		e.line("No node override matches the node: its pod is the template as is (spec hash %s).", o.SpecHash)
	} else {
		e.line("Node override %s applies: the first whose nodeSelector matches the node (spec hash %s).", o.Name, o.SpecHash)
	}
	for _, m := range o.Misses {
		e.detail("Override %s does not match: %s.", m.Name, m.String())
	}
	if req := o.RequestsString(); req != "" {
		e.detail("Requests: %s.", req)
	}
}

// healthy explains a node with an available agent pod.
func (e *explainer) healthy() {
	r, s := e.r, e.s
	if s.updated(r.pod) {
		e.line("Node %s runs an available agent pod %s of the current revision (%s).", r.name, r.pod.Name, e.revision(r.pod))
	} else {
		e.line("Node %s runs an available agent pod %s of %s, not of the current revision (%s).",
			r.name, r.pod.Name, e.revision(r.pod), e.currentRevision())
		switch r.reason.Code {
		case planner.ReasonOnDelete:
			e.detail("The update strategy is OnDelete: the pod is replaced only once someone deletes it.")
		case planner.ReasonPaused:
			e.detail("The rollout is paused (spec.updateStrategy.rollingUpdate.paused): resume it with 'kubectl nas rollout resume %s'.", s.set.Name)
		case planner.ReasonSkippedUnhealthy:
			e.detail("The node is unhealthy (%s), and spec.updateStrategy.rollingUpdate.unhealthyNodePolicy is Skip: the rollout leaves "+
				"it out and completes without it; the pod is replaced, within the budget, once the node is healthy again.", r.reason)
		case planner.ReasonWaitingForCanary:
			e.detail("The rollout is held at its canary (%s): other nodes keep the revision the fleet runs until the canary succeeds "+
				"(status.canary; 'kubectl nas rollout status %s').", canaryPhase(s.set), s.set.Name)
		case planner.ReasonCanaryRolledBack:
			e.detail("The node was a canary of a revision that failed or was aborted (%s): it runs the fleet's revision again; "+
				"'kubectl nas rollout retry %s' tries the canary again.", canaryPhase(s.set), s.set.Name)
		case planner.ReasonPartitioned:
			e.detail("The node is in the rollout's partition (the last %d eligible nodes by name still running an older template, from %s on): "+
				"it keeps its pod until the partition is lowered.", s.plan.Rollout.Partition, s.plan.Rollout.FirstPartitionedNode)
		default:
			e.detail("The rolling update replaces it within the maxUnavailable/maxSurge budget; %d of %d eligible nodes lack an available pod now "+
				"(see 'kubectl nas rollout status %s').", s.plan.Status.NumberUnavailable, s.plan.Status.DesiredNumberScheduled, s.set.Name)
		}
	}
	if r.pod.DeletionTimestamp != nil {
		e.detail("The pod is being deleted (grace period %ds, %s): it counts as available until it is gone or stops being ready; "+
			"its replacement is created once it is gone (at once with maxSurge).", gracePeriod(r.pod), graceLeft(s.now, r.pod))
	}
	for _, pod := range r.pods {
		if pod == r.pod {
			continue
		}
		if s.updated(pod) && !s.available(pod) {
			e.line("Surge pod %s (%s) is starting next to it: %s.", pod.Name, e.revision(pod), planner.PodProblem(pod, r.node))
		} else {
			e.line("Another agent pod, %s (%s), is on the node: the controller removes the extra one.", pod.Name, e.revision(pod))
		}
	}
}

// unavailable explains an eligible node without an available agent pod.
func (e *explainer) unavailable() {
	r, s := e.r, e.s
	e.line("Node %s should run an agent pod of %s but has no available one: %s.", r.name, e.setName(), r.reason)
	pod := r.pod
	if pod == nil {
		switch r.reason.Code {
		case planner.ReasonTemplateRejected, planner.ReasonServiceAccountMissing:
			e.detail("The set's %s condition says: %s", nasv1alpha1.ConditionPodTemplateValid, r.reason.Message)
		default:
			e.detail("The controller creates the pod on its next pass. If this lasts, check that the controller runs, " +
				"and look at the set's events below and with 'kubectl describe nas'.")
		}
		return
	}
	e.podDetails(pod)
	if !s.updated(pod) && pod.DeletionTimestamp == nil {
		e.detail("The pod runs %s; the current revision is %s.", e.revision(pod), e.currentRevision())
	}
}

// podDetails expands the planner's reason for the pod with what the pod and node say.
func (e *explainer) podDetails(pod *corev1.Pod) {
	r, s := e.r, e.s
	switch r.reason.Code {
	case planner.ReasonPodTerminating:
		e.detail("Agent pod %s is being deleted (grace period %ds, %s).", pod.Name, gracePeriod(pod), graceLeft(s.now, pod))
		if len(pod.Finalizers) > 0 {
			e.detail("It waits for its finalizers to be removed: %s.", strings.Join(pod.Finalizers, ", "))
		}
		e.detail("Its replacement is created once it is gone (at once with maxSurge).")
	case planner.ReasonPodFailed:
		e.detail("Agent pod %s failed%s. The controller deletes it and creates a new one (with a backoff when it keeps failing).",
			pod.Name, parenthesized(pod.Status.Message))
	case planner.ReasonFailedBackoff:
		e.detail("Agent pod %s failed%s. It keeps failing: the controller deletes and replaces it after a backoff, at %s.",
			pod.Name, parenthesized(pod.Status.Message), r.reason.Until.UTC().Format(time.RFC3339))
	case planner.ReasonPodSucceeded:
		e.detail("Agent pod %s exited. Agents must keep running: the controller deletes it and creates a new one.", pod.Name)
	case planner.ReasonUnschedulable:
		e.unschedulable(pod)
	case planner.ReasonInsufficientResources:
		e.nodeFull(pod)
	case planner.ReasonNodeNotReady:
		e.notReady(pod)
	case planner.ReasonImagePull, planner.ReasonCrashLoop, planner.ReasonContainerWaiting:
		e.waitingContainer(pod)
	case planner.ReasonNotScheduled:
		e.detail("Agent pod %s is not bound to the node yet: the scheduler has not placed it.", pod.Name)
	case planner.ReasonPodStarting:
		e.detail("Agent pod %s is bound to the node and starting (phase %s).", pod.Name, pod.Status.Phase)
	case planner.ReasonPodNotReady:
		e.notReadyPod(pod)
	case planner.ReasonMinReadySeconds:
		if c := podCondition(pod, corev1.PodReady); c != nil {
			e.detail("Agent pod %s is ready since %s; it counts as available after minReadySeconds (%ds), at %s.",
				pod.Name, c.LastTransitionTime.UTC().Format(time.RFC3339), s.set.Spec.MinReadySeconds, r.reason.Until.UTC().Format(time.RFC3339))
		}
	default:
		e.detail("Agent pod %s: %s.", pod.Name, r.reason)
	}
}

func (e *explainer) unschedulable(pod *corev1.Pod) {
	reason := e.r.reason
	e.detail("Agent pod %s is pending: the scheduler cannot place it on the node (%s).", pod.Name, reason.SchedulerReason)
	if msg := strings.TrimSpace(reason.Message); msg != "" {
		e.detail("The scheduler says: %s", msg)
	}
	e.detail("The controller checks only nodeName, nodeSelector, node affinity and taints; the scheduler also needs room " +
		"(resources, host ports) on the node.")
}

func (e *explainer) notReady(pod *corev1.Pod) {
	for _, c := range e.r.node.Status.Conditions {
		if c.Type == corev1.NodeReady {
			e.detail("The node's Ready condition is %s since %s%s.", c.Status, c.LastTransitionTime.UTC().Format(time.RFC3339),
				parenthesized(strings.TrimSpace(c.Reason+": "+c.Message)))
		}
	}
	e.detail("Agent pod %s cannot become ready until the kubelet reports the node ready again.", pod.Name)
}

func (e *explainer) waitingContainer(pod *corev1.Pod) {
	reason := e.r.reason
	name := reason.Container
	cs := containerStatus(pod, name)
	if cs == nil || cs.State.Waiting == nil {
		e.detail("Container %s of agent pod %s is waiting: %s.", name, pod.Name, reason.WaitingReason)
		return
	}
	e.detail("Container %s of agent pod %s is waiting: %s%s.", name, pod.Name, reason.WaitingReason, parenthesized(cs.State.Waiting.Message))
	switch {
	case reason.Code == planner.ReasonImagePull:
		e.detail("The kubelet cannot pull image %s: check the image name and tag, the registry, and the pod's imagePullSecrets.",
			containerImage(pod, name))
	case reason.Code == planner.ReasonCrashLoop:
		msg := fmt.Sprintf("It keeps crashing: restarted %d times", reason.Restarts)
		if t := cs.LastTerminationState.Terminated; t != nil {
			msg += fmt.Sprintf("; last exit code %d", t.ExitCode)
			if t.Reason != "" {
				msg += " (" + t.Reason + ")"
			}
			if !t.FinishedAt.IsZero() {
				msg += " at " + t.FinishedAt.UTC().Format(time.RFC3339)
			}
		}
		e.detail("%s. Its logs: kubectl logs -n %s %s -c %s --previous", msg, pod.Namespace, pod.Name, name)
	case reason.WaitingReason == "CreateContainerConfigError", reason.WaitingReason == "CreateContainerError":
		// The kubelet's own reasons, not the planner's words.
		e.detail("The kubelet cannot create the container: check the ConfigMaps, Secrets and volumes it refers to.")
	}
}

func (e *explainer) notReadyPod(pod *corev1.Pod) {
	var names []string
	for _, cs := range pod.Status.ContainerStatuses {
		if !cs.Ready {
			names = append(names, cs.Name)
		}
	}
	if len(names) == 0 {
		e.detail("Agent pod %s runs but is not ready.", pod.Name)
		return
	}
	e.detail("Agent pod %s runs but is not ready: container(s) %s not ready (check their readiness probes).", pod.Name, strings.Join(names, ", "))
}

// revision renders a pod's revision: "revision 3, hash abc".
func (e *explainer) revision(pod *corev1.Pod) string {
	n, hash := e.s.revisionOf(pod)
	switch {
	case n > 0:
		return fmt.Sprintf("revision %d, hash %s", n, hash)
	case hash != "":
		return "hash " + hash
	default:
		return "no revision hash"
	}
}

func (e *explainer) currentRevision() string {
	if n := e.s.revisions[e.s.hash]; n > 0 {
		return fmt.Sprintf("revision %d, hash %s", n, e.s.hash)
	}
	return "hash " + e.s.hash
}

// exclusionDetails lists every constraint of the template that excludes the node, each checked on its
// own by the planner's Placer: the nodeName, each nodeSelector entry, each requirement of each required
// node affinity term, and each NoSchedule or NoExecute taint.
func exclusionDetails(spec *corev1.PodSpec, node *corev1.Node) []string {
	var out []string
	if spec.NodeName != "" && excludedBy(&corev1.PodSpec{NodeName: spec.NodeName}, node, planner.ReasonNodeNameMismatch) {
		out = append(out, fmt.Sprintf("spec.template.spec.nodeName is %s: the agent runs on that node only.", spec.NodeName))
	}
	keys := make([]string, 0, len(spec.NodeSelector))
	for k := range spec.NodeSelector {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := spec.NodeSelector[k]
		if excludedBy(&corev1.PodSpec{NodeSelector: map[string]string{k: v}}, node, planner.ReasonNodeSelectorMismatch) {
			out = append(out, fmt.Sprintf("nodeSelector %s=%s does not match: %s.", k, v, labelOnNode(node, k)))
		}
	}
	out = append(out, affinityDetails(spec, node)...)
	for _, t := range untoleratedTaints(spec, node) {
		if t.Effect == corev1.TaintEffectNoExecute {
			out = append(out, fmt.Sprintf("taint %s is not tolerated: an agent pod on the node is deleted (NoExecute).", planner.TaintString(t)))
		} else {
			out = append(out, fmt.Sprintf("taint %s is not tolerated: no new agent pod is created there; one already running may stay (NoSchedule).",
				planner.TaintString(t)))
		}
	}
	return out
}

// affinityDetails explains required node affinity: terms are ORed, so each term is shown with the
// requirements that fail it.
func affinityDetails(spec *corev1.PodSpec, node *corev1.Node) []string {
	a := spec.Affinity
	if a == nil || a.NodeAffinity == nil || a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		return nil
	}
	if !excludedBy(&corev1.PodSpec{Affinity: a}, node, planner.ReasonNodeAffinityMismatch) {
		return nil
	}
	terms := a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
	out := []string{fmt.Sprintf("required node affinity does not match: none of its %d term(s) matches the node "+
		"(terms are ORed; every requirement of a term must hold):", len(terms))}
	for i, term := range terms {
		var failing []string
		check := func(req corev1.NodeSelectorRequirement, fields bool) {
			single := corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{req}}
			if fields {
				single = corev1.NodeSelectorTerm{MatchFields: []corev1.NodeSelectorRequirement{req}}
			}
			if excludedBy(affinitySpec(single), node, planner.ReasonNodeAffinityMismatch) {
				actual := labelOnNode(node, req.Key)
				if fields {
					actual = fmt.Sprintf("the node's %s is %s", req.Key, node.Name)
				}
				failing = append(failing, fmt.Sprintf("%s (%s)", requirementString(req), actual))
			}
		}
		for _, req := range term.MatchExpressions {
			check(req, false)
		}
		for _, req := range term.MatchFields {
			check(req, true)
		}
		switch {
		case len(term.MatchExpressions)+len(term.MatchFields) == 0:
			out = append(out, fmt.Sprintf("  term %d is empty and matches no node", i+1))
		case len(failing) == 0:
			out = append(out, fmt.Sprintf("  term %d does not match", i+1))
		default:
			out = append(out, fmt.Sprintf("  term %d: %s", i+1, strings.Join(failing, "; ")))
		}
	}
	return out
}

func affinitySpec(term corev1.NodeSelectorTerm) *corev1.PodSpec {
	return &corev1.PodSpec{Affinity: &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
		RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{term}},
	}}}
}

// untoleratedTaints are the node's taints the template does not tolerate, with the automatic
// tolerations, each checked on its own by the planner's Placer.
func untoleratedTaints(spec *corev1.PodSpec, node *corev1.Node) []*corev1.Taint {
	tolerations := &corev1.PodSpec{Tolerations: spec.Tolerations, HostNetwork: spec.HostNetwork}
	var out []*corev1.Taint
	for i := range node.Spec.Taints {
		t := &node.Spec.Taints[i]
		only := node.DeepCopy()
		only.Spec.Taints = []corev1.Taint{*t}
		if excludedBy(tolerations, only, planner.ReasonTaintNotTolerated) {
			out = append(out, t)
		}
	}
	return out
}

func firstUntoleratedTaint(spec *corev1.PodSpec, node *corev1.Node) *corev1.Taint {
	if ts := untoleratedTaints(spec, node); len(ts) > 0 {
		return ts[0]
	}
	return nil
}

// excludedBy asks the planner whether spec excludes the node for the given reason code.
func excludedBy(spec *corev1.PodSpec, node *corev1.Node, code planner.ReasonCode) bool {
	p := planner.NewPlacer(spec).Place(node)
	return !p.ShouldRun && p.Exclusion != nil && p.Exclusion.Code == code
}

// tolerationFor is a toleration of the taint, in YAML flow style.
func tolerationFor(t *corev1.Taint) string {
	if t.Value == "" {
		return fmt.Sprintf("{key: %s, operator: Exists, effect: %s}", t.Key, t.Effect)
	}
	return fmt.Sprintf("{key: %s, operator: Equal, value: %s, effect: %s}", t.Key, t.Value, t.Effect)
}

func labelOnNode(node *corev1.Node, key string) string {
	if v, ok := node.Labels[key]; ok {
		return fmt.Sprintf("the node has %s=%s", key, v)
	}
	return "the node has no label " + key
}

// requirementString renders a node selector requirement: "key In [a b]", "key Exists".
func requirementString(r corev1.NodeSelectorRequirement) string {
	switch r.Operator {
	case corev1.NodeSelectorOpExists, corev1.NodeSelectorOpDoesNotExist:
		return fmt.Sprintf("%s %s", r.Key, r.Operator)
	default:
		return fmt.Sprintf("%s %s [%s]", r.Key, r.Operator, strings.Join(r.Values, " "))
	}
}

func podCondition(pod *corev1.Pod, t corev1.PodConditionType) *corev1.PodCondition {
	for i := range pod.Status.Conditions {
		if pod.Status.Conditions[i].Type == t {
			return &pod.Status.Conditions[i]
		}
	}
	return nil
}

func containerStatus(pod *corev1.Pod, name string) *corev1.ContainerStatus {
	for _, list := range [][]corev1.ContainerStatus{pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses} {
		for i := range list {
			if list[i].Name == name {
				return &list[i]
			}
		}
	}
	return nil
}

func containerImage(pod *corev1.Pod, name string) string {
	for _, list := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for _, c := range list {
			if c.Name == name {
				return c.Image
			}
		}
	}
	return "<unknown>"
}

func gracePeriod(pod *corev1.Pod) int64 {
	if pod.DeletionGracePeriodSeconds != nil {
		return *pod.DeletionGracePeriodSeconds
	}
	return 0
}

// graceLeft says when a terminating pod's grace period ends: its deletionTimestamp.
func graceLeft(now time.Time, pod *corev1.Pod) string {
	end := pod.DeletionTimestamp.Time
	if end.After(now) {
		return "ends in " + duration.HumanDuration(end.Sub(now))
	}
	return "ended " + duration.HumanDuration(now.Sub(end)) + " ago"
}

func parenthesized(s string) string {
	s = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(s), ":"))
	if s == "" {
		return ""
	}
	return " (" + s + ")"
}

func ago(now, t time.Time) string {
	if t.IsZero() {
		return "<unknown>"
	}
	return duration.HumanDuration(now.Sub(t))
}

// eventTime is when an event last happened.
func eventTime(ev corev1.Event) time.Time {
	switch {
	case !ev.LastTimestamp.IsZero():
		return ev.LastTimestamp.Time
	case !ev.EventTime.IsZero():
		return ev.EventTime.Time
	default:
		return ev.CreationTimestamp.Time
	}
}

// canaryPhase names the set's canary phase, for the explanations of held nodes.
func canaryPhase(set *nasv1alpha1.NodeAgentSet) string {
	if set.Status.Canary == nil {
		return "no verdict yet"
	}
	return "phase " + string(set.Status.Canary.Phase)
}
