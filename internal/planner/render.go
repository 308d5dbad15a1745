package planner

// The one renderer: every sentence about a plan that a person reads (status conditions, events,
// kubectl nas) is rendered here from the plan's typed data. Consumers switch on codes; none of them
// matches on these sentences.

import (
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
)

// maxReasonsInMessage caps how many distinct causes a condition message lists.
const maxReasonsInMessage = 3

// maxStuckNodesInMessage caps how many stuck nodes the Progressing message names.
const maxStuckNodesInMessage = 5

// sentences are the sentences of the codes whose sentence needs no detail.
var sentences = map[ReasonCode]string{
	ReasonNoPod:                 "no agent pod yet",
	ReasonTemplateRejected:      "no agent pod: the API server rejects the pod template",
	ReasonServiceAccountMissing: "no agent pod: its ServiceAccount does not exist yet",
	ReasonPodSucceeded:          "agent pod exited",
	ReasonPodTerminating:        "agent pod terminating",
	ReasonNodeNotReady:          "node not ready",
	ReasonNotScheduled:          "agent pod not scheduled yet",
	ReasonPodStarting:           "agent pod starting",
	ReasonPodNotReady:           "agent pod not ready",
	ReasonMinReadySeconds:       "agent pod ready for less than minReadySeconds",
	ReasonPartitioned:           "outdated: in the rollout partition",
	ReasonPaused:                "outdated: rollout paused",
	ReasonOnDelete:              "outdated: OnDelete strategy, delete the pod to update it",
	ReasonWaitingForBudget:      "outdated: waiting for the rolling update",
	ReasonNodeShutdown:          "agent pod stopped by the node's graceful shutdown; replaced once the node is Ready",
	ReasonWaitingForCanary:      "outdated: waiting for the canary",
	ReasonCanaryRolledBack:      "canary rolled back",
}

// String renders the reason as a short sentence, the same for nodes with the same cause so that
// messages can group them: "taint dedicated=gpu:NoSchedule not tolerated", "no agent pod yet",
// "container agent: CrashLoopBackOff".
func (r NodeReason) String() string {
	if s, ok := sentences[r.Code]; ok {
		return s
	}
	switch r.Code {
	case ReasonNodeNameMismatch:
		return r.Detail()
	case ReasonNodeSelectorMismatch, ReasonNodeAffinityMismatch:
		return r.Detail() + " does not match"
	case ReasonTaintNotTolerated:
		return r.Detail() + " not tolerated"
	case ReasonPodFailed, ReasonFailedBackoff:
		return "agent pod failed" + parenthesized(r.Message)
	case ReasonUnschedulable:
		return "agent pod pending: " + r.SchedulerReason + parenthesized(r.Message)
	case ReasonInsufficientResources:
		return "agent pod pending: node full (insufficient " + strings.Join(r.Resources, ", ") +
			"); a PriorityClass such as system-node-critical lets the scheduler preempt other pods"
	case ReasonSkippedUnhealthy:
		if r.Taint != nil {
			return "outdated: unhealthy node (taint " + TaintString(r.Taint) + ") skipped by the rollout"
		}
		return "outdated: unhealthy node (not ready) skipped by the rollout"
	case ReasonImagePull, ReasonCrashLoop, ReasonContainerWaiting:
		return fmt.Sprintf("container %s: %s", r.Container, r.WaitingReason)
	}
	return string(r.Code)
}

// Detail renders what excludes a node, in short: "taint dedicated=gpu:NoSchedule", "nodeSelector
// gpu=true", "required node affinity", "template spec.nodeName is node-1". Empty for other codes.
func (r NodeReason) Detail() string {
	switch r.Code {
	case ReasonNodeNameMismatch:
		return "template spec.nodeName is " + r.NodeName
	case ReasonNodeSelectorMismatch:
		if r.SelectorKey == "" {
			return "nodeSelector"
		}
		return fmt.Sprintf("nodeSelector %s=%s", r.SelectorKey, r.SelectorValue)
	case ReasonNodeAffinityMismatch:
		return "required node affinity"
	case ReasonTaintNotTolerated:
		if r.Taint == nil {
			return "taint"
		}
		return "taint " + TaintString(r.Taint)
	}
	return ""
}

// TaintString renders a taint the way kubectl does: key=value:Effect, or key:Effect without a value.
func TaintString(t *corev1.Taint) string {
	var b strings.Builder
	b.WriteString(t.Key)
	if t.Value != "" {
		b.WriteString("=")
		b.WriteString(t.Value)
	}
	b.WriteString(":")
	b.WriteString(string(t.Effect))
	return b.String()
}

// AvailableCondition says whether every eligible node runs an available agent and, if not, why; it
// also names why nodes are excluded, so "why is there no agent on my node" has an answer on the set.
func AvailableCondition(p Plan) metav1.Condition {
	c := p.Status
	unavailable, excluded := groupReasons(p.Nodes)
	cond := metav1.Condition{Type: nasv1alpha1.ConditionAvailable}
	switch {
	case p.Template.State == TemplateRejected && c.NumberAvailable < c.DesiredNumberScheduled:
		cond.Status, cond.Reason = metav1.ConditionFalse, nasv1alpha1.ReasonPodTemplateRejected
		cond.Message = fmt.Sprintf("%d of %d eligible nodes have no available agent pod: the API server rejects the pod template",
			c.DesiredNumberScheduled-c.NumberAvailable, c.DesiredNumberScheduled)
	case p.Template.State == TemplateServiceAccountMissing && c.NumberAvailable < c.DesiredNumberScheduled:
		cond.Status, cond.Reason = metav1.ConditionFalse, nasv1alpha1.ReasonServiceAccountMissing
		cond.Message = fmt.Sprintf("%d of %d eligible nodes have no available agent pod: the pod's ServiceAccount does not exist yet",
			c.DesiredNumberScheduled-c.NumberAvailable, c.DesiredNumberScheduled)
	case c.NumberAvailable < c.DesiredNumberScheduled:
		cond.Status, cond.Reason = metav1.ConditionFalse, nasv1alpha1.ReasonNodesUnavailable
		cond.Message = fmt.Sprintf("%d of %d eligible nodes have no available agent pod: %s",
			c.DesiredNumberScheduled-c.NumberAvailable, c.DesiredNumberScheduled, unavailable)
	default:
		cond.Status, cond.Reason = metav1.ConditionTrue, nasv1alpha1.ReasonAllNodesAvailable
		cond.Message = fmt.Sprintf("All %d eligible nodes run an available agent pod", c.DesiredNumberScheduled)
	}
	if excluded != "" {
		cond.Message += "; not eligible: " + excluded
	}
	return cond
}

// ProgressingCondition says where the rollout of the current template (hash) stands: the plan's
// rollout phase, with its progress.
func ProgressingCondition(p Plan, hash string) metav1.Condition {
	r := p.Rollout
	cond := metav1.Condition{Type: nasv1alpha1.ConditionProgressing, Status: metav1.ConditionTrue}
	progress := fmt.Sprintf("%d of %d eligible nodes run an available pod of revision %s", r.UpdatedAvailable, r.Target, hash)
	if r.Partition > 0 {
		progress += fmt.Sprintf("; partition: %d nodes, from %s on by name, keep their pods", r.Partition, r.FirstPartitionedNode)
	}
	if p.Strategy.HostPortFallback {
		progress += "; the template binds host ports, so maxSurge is applied delete-first"
	}
	if len(r.Skipped) > 0 {
		progress += fmt.Sprintf("; %s skipped (unhealthyNodePolicy Skip): %s", pluralUnhealthyNodes(len(r.Skipped)), SkippedNodeNames(r.Skipped))
	}
	switch r.Phase {
	case RolloutComplete:
		cond.Reason, cond.Message = nasv1alpha1.ReasonRolloutComplete, progress
	case RolloutWaitingForDeletion:
		cond.Reason = nasv1alpha1.ReasonWaitingForDeletion
		cond.Message = progress + "; strategy OnDelete: old pods are replaced when deleted"
	case RolloutPaused:
		cond.Status, cond.Reason = metav1.ConditionUnknown, nasv1alpha1.ReasonRolloutPaused
		cond.Message = progress + "; paused"
	case RolloutCanary:
		cond.Reason, cond.Message = nasv1alpha1.ReasonCanaryInProgress, "held at the canary nodes: "+p.Canary.Message
	case RolloutCanaryFailed:
		cond.Status, cond.Reason, cond.Message = metav1.ConditionFalse, nasv1alpha1.ReasonCanaryFailed, p.Canary.Message
	case RolloutCanaryAborted:
		cond.Status, cond.Reason, cond.Message = metav1.ConditionFalse, nasv1alpha1.ReasonCanaryAborted, p.Canary.Message
	case RolloutDeadlineExceeded:
		cond.Status, cond.Reason = metav1.ConditionFalse, nasv1alpha1.ReasonProgressDeadlineExceeded
		cond.Message = fmt.Sprintf("no progress since %s: %s; stuck: %s",
			r.LastProgress.UTC().Format(time.RFC3339), progress, StuckNodes(r.Stuck))
	default:
		cond.Reason, cond.Message = nasv1alpha1.ReasonRollingOut, progress
	}
	return cond
}

// SelectorMismatchCondition renders SelectorMismatch's answer: the template's pods would not be the
// set's own, so none is created or deleted until the spec is fixed.
func SelectorMismatchCondition(mismatch string) metav1.Condition {
	return metav1.Condition{
		Type: nasv1alpha1.ConditionPodTemplateValid, Status: metav1.ConditionFalse, Reason: nasv1alpha1.ReasonSelectorMismatch,
		Message: "The set's selector cannot own the pods of its template; no pod is created or deleted until the spec is fixed: " + mismatch,
	}
}

// TemplateValidCondition renders the template verdict; false means the condition should be removed
// (no verdict, or the check itself failed and says nothing about the template).
func TemplateValidCondition(p Plan) (metav1.Condition, bool) {
	cond := metav1.Condition{Type: nasv1alpha1.ConditionPodTemplateValid}
	switch p.Template.State {
	case TemplateAccepted:
		cond.Status, cond.Reason = metav1.ConditionTrue, nasv1alpha1.ReasonPodTemplateAccepted
		cond.Message = "The API server accepts the pod template (server-side dry-run)"
	case TemplateRejected:
		cond.Status, cond.Reason = metav1.ConditionFalse, nasv1alpha1.ReasonPodTemplateRejected
		cond.Message = "The API server rejects the pod template: " + p.Template.Message
	case TemplateServiceAccountMissing:
		cond.Status, cond.Reason = metav1.ConditionFalse, nasv1alpha1.ReasonServiceAccountMissing
		cond.Message = "The pod's ServiceAccount does not exist (yet); pods are created once it does: " + p.Template.Message
	case TemplateCheckFailed:
		cond.Status, cond.Reason = metav1.ConditionUnknown, nasv1alpha1.ReasonPodTemplateCheckFailed
		cond.Message = "The pod template could not be checked; retrying: " + p.Template.Message
	default:
		return metav1.Condition{}, false
	}
	return cond, true
}

// HostPortFallbackNote is the event note of a surge rollout that falls back to delete-first because
// the template binds host ports.
func HostPortFallbackNote(s Strategy) string {
	return fmt.Sprintf("The template binds host ports %v, so a second pod cannot run next to the old one: maxSurge is applied "+
		"as delete-then-create with a budget of %d unavailable nodes", s.HostPorts, s.MaxUnavailable)
}

// StuckNodes names the first stuck nodes with their reasons: "node-1 (node not ready), ...".
func StuckNodes(stuck []StuckNode) string {
	if len(stuck) == 0 {
		return "no node is stuck; pods of older templates wait for their turn"
	}
	parts := make([]string, 0, maxStuckNodesInMessage+1)
	for i, s := range stuck {
		if i == maxStuckNodesInMessage {
			parts = append(parts, fmt.Sprintf("and %d more", len(stuck)-i))
			break
		}
		parts = append(parts, fmt.Sprintf("%s (%s)", s.Node, s.Reason))
	}
	return strings.Join(parts, ", ")
}

// SkippedNodeNames names the first skipped nodes: "node-1, node-2 and 3 more".
func SkippedNodeNames(skipped []StuckNode) string {
	names := make([]string, 0, maxStuckNodesInMessage)
	for i, s := range skipped {
		if i == maxStuckNodesInMessage {
			return strings.Join(names, ", ") + fmt.Sprintf(" and %d more", len(skipped)-i)
		}
		names = append(names, s.Node)
	}
	return strings.Join(names, ", ")
}

func pluralUnhealthyNodes(n int) string {
	if n == 1 {
		return "1 unhealthy node"
	}
	return fmt.Sprintf("%d unhealthy nodes", n)
}

// groupReasons renders "2 nodes: taint dedicated=gpu:NoSchedule not tolerated, 1 node: ..." for the
// unavailable and the excluded nodes, most frequent cause first. Nodes with an available pod of an
// older template are neither.
func groupReasons(states map[string]NodeState) (unavailable, excluded string) {
	unavailableCounts, excludedCounts := map[string]int{}, map[string]int{}
	for _, s := range states {
		switch {
		case !s.Placement.ShouldRun:
			excludedCounts[s.Reason.String()]++
		case !s.Reason.Code.Outdated():
			unavailableCounts[s.Reason.String()]++
		}
	}
	return renderCounts(unavailableCounts), renderCounts(excludedCounts)
}

func renderCounts(counts map[string]int) string {
	reasons := make([]string, 0, len(counts))
	for r := range counts {
		reasons = append(reasons, r)
	}
	sort.Slice(reasons, func(i, j int) bool {
		if counts[reasons[i]] != counts[reasons[j]] {
			return counts[reasons[i]] > counts[reasons[j]]
		}
		return reasons[i] < reasons[j]
	})
	parts := make([]string, 0, maxReasonsInMessage+1)
	others := 0
	for i, r := range reasons {
		if i >= maxReasonsInMessage {
			others += counts[r]
			continue
		}
		parts = append(parts, fmt.Sprintf("%s: %s", pluralNodes(counts[r]), r))
	}
	if others > 0 {
		parts = append(parts, fmt.Sprintf("%s: other causes", pluralNodes(others)))
	}
	return strings.Join(parts, ", ")
}

func pluralNodes(n int) string {
	if n == 1 {
		return "1 node"
	}
	return fmt.Sprintf("%d nodes", n)
}

func parenthesized(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return ""
	}
	return " (" + s + ")"
}

// String renders where a node stands with the readiness gate: "gated: waiting for the agent",
// "gate returns at 2026-12-02T10:00:00Z unless the agent recovers".
func (g GateNode) String() string {
	switch g.Code {
	case GateWaiting:
		return "gated: waiting for the agent"
	case GateLift:
		return "gate lifted: the agent is available"
	case GateReturn:
		return "gated again: the agent was unavailable for the grace period"
	case GateGracePeriod:
		return "agent unavailable: the gate returns at " + g.Until.UTC().Format(time.RFC3339) + " unless it recovers"
	case GateReplacing:
		return "agent pod being replaced by the set: not gated for that"
	case GateMaxTainted:
		return "agent unavailable, not gated: maxTaintedNodes nodes are gated already"
	case GateRelease:
		return "gate taint removed: the set no longer gates this node"
	}
	return string(g.Code)
}

// GateCondition renders the NodeReadinessGate condition; false means the set has no gate and the
// condition should be removed.
func GateCondition(p Plan) (metav1.Condition, bool) {
	g := p.Gate
	cond := metav1.Condition{Type: nasv1alpha1.ConditionNodeReadinessGate}
	switch g.State {
	case GateActive:
		cond.Status, cond.Reason = metav1.ConditionTrue, nasv1alpha1.ReasonGateActive
		cond.Message = fmt.Sprintf("%s: %d of %d eligible nodes gated by taint %s", g.Mode, g.NumberGated,
			p.Status.DesiredNumberScheduled, g.Key)
		if g.Mode == nasv1alpha1.ContinuousGateMode {
			cond.Message += fmt.Sprintf("; %d of at most %d nodes gated again by this set", g.Tainted, g.MaxTainted)
		}
	case GateKeyNotAllowed:
		prefixes := g.AllowedPrefixes
		if len(prefixes) == 0 {
			prefixes = []string{DefaultGateTaintPrefix}
		}
		cond.Status, cond.Reason = metav1.ConditionFalse, nasv1alpha1.ReasonGateKeyNotAllowed
		cond.Message = fmt.Sprintf("taint key %s does not start with a prefix the controller may lift (%s): no node is touched",
			g.Key, strings.Join(prefixes, ", "))
	case GateKeyConflict:
		cond.Status, cond.Reason = metav1.ConditionFalse, nasv1alpha1.ReasonGateKeyConflict
		cond.Message = fmt.Sprintf("NodeAgentSet %s, older, gates taint key %s already: no node is touched", g.ConflictsWith, g.Key)
	default:
		return metav1.Condition{}, false
	}
	return cond, true
}

// GateEventNote is the note of the event on a node whose gate the controller lifted, put back or
// released.
func GateEventNote(w GateWrite, key string) string {
	switch w.Code {
	case GateLift:
		return fmt.Sprintf("The agent is available: lifted taint %s", key)
	case GateReturn:
		return fmt.Sprintf("The agent was unavailable for the grace period: taint %s:NoSchedule put back", key)
	}
	return "The set no longer gates this node: removed the taint it had put back"
}

// String says why an override did not match a node, e.g. `label gpu=true is not on the node`.
func (m OverrideMiss) String() string {
	values := strings.Join(m.Values, ", ")
	switch {
	case m.Invalid != "":
		return "its nodeSelector is invalid: " + m.Invalid
	case m.Operator == metav1.LabelSelectorOpIn && len(m.Values) == 1:
		return fmt.Sprintf("label %s=%s is not on the node", m.Key, m.Values[0])
	case m.Operator == metav1.LabelSelectorOpIn:
		return fmt.Sprintf("label %s is not one of %s", m.Key, values)
	case m.Operator == metav1.LabelSelectorOpNotIn:
		return fmt.Sprintf("label %s is one of %s", m.Key, values)
	case m.Operator == metav1.LabelSelectorOpExists:
		return fmt.Sprintf("label %s is not on the node", m.Key)
	case m.Operator == metav1.LabelSelectorOpDoesNotExist:
		return fmt.Sprintf("label %s is on the node", m.Key)
	default:
		return "its nodeSelector does not match"
	}
}

// RequestsString writes a rendered pod's requests per container, e.g. `agent: cpu=200m,memory=512Mi`.
func (o NodeOverride) RequestsString() string {
	var parts []string
	for _, c := range o.Requests() {
		if len(c.Requests) == 0 {
			continue
		}
		keys := make([]string, 0, len(c.Requests))
		for k := range c.Requests {
			keys = append(keys, string(k))
		}
		sort.Strings(keys)
		kv := make([]string, 0, len(keys))
		for _, k := range keys {
			q := c.Requests[corev1.ResourceName(k)]
			kv = append(kv, k+"="+q.String())
		}
		parts = append(parts, c.Container+": "+strings.Join(kv, ","))
	}
	return strings.Join(parts, "; ")
}

// CanaryMessage words where a canary stands; detail names the node of a failure and why.
func CanaryMessage(st *nasv1alpha1.CanaryStatus, spec *nasv1alpha1.CanaryStrategy, detail string) string {
	// "node a" or "nodes a, b", and the verb's ending that agrees with it.
	nodes, s := "node "+strings.Join(st.Nodes, ", "), "s"
	if len(st.Nodes) != 1 {
		nodes, s = "nodes "+strings.Join(st.Nodes, ", "), ""
	}
	switch st.Phase {
	case nasv1alpha1.CanaryProgressing:
		if len(st.Nodes) == 0 {
			return fmt.Sprintf("revision %s: no eligible node matches the canary", st.Revision)
		}
		return fmt.Sprintf("revision %s: updating canary %s; waiting for %s", st.Revision, nodes, detail)
	case nasv1alpha1.CanaryWatching:
		return fmt.Sprintf("revision %s: watching canary %s for %s since %s; restarts: %d, at most %d allowed", st.Revision, nodes,
			canaryDuration(spec), st.WatchStartedAt.UTC().Format(time.RFC3339), st.Restarts, spec.MaxRestarts)
	case nasv1alpha1.CanaryWaitingForPromotion:
		return fmt.Sprintf("revision %s passed its canary on %s; waiting for kubectl nas rollout promote", st.Revision, nodes)
	case nasv1alpha1.CanarySucceeded:
		if len(st.Nodes) == 0 {
			return fmt.Sprintf("revision %s: no node runs an older revision, nothing to compare against", st.Revision)
		}
		if strings.HasPrefix(st.Decision, "promote:") {
			return fmt.Sprintf("revision %s promoted by a person after its canary on %s", st.Revision, nodes)
		}
		return fmt.Sprintf("revision %s passed its canary on %s", st.Revision, nodes)
	case nasv1alpha1.CanaryAborted:
		return fmt.Sprintf("revision %s: canary aborted by a person; canary %s get%s revision %s back", st.Revision, nodes, s, st.StableRevision)
	}
	var why string
	switch st.Reason {
	case nasv1alpha1.CanaryTooManyRestarts:
		why = fmt.Sprintf("the canary pods' containers restarted %d times during the watch, more than maxRestarts %d", st.Restarts, spec.MaxRestarts)
	case nasv1alpha1.CanaryPodUnavailable:
		why = fmt.Sprintf("a canary pod was unavailable for more than %s (%s)", CanaryUnavailableGrace, detail)
	default:
		why = "a canary pod was not available within the progress deadline (" + detail + ")"
	}
	then := fmt.Sprintf("the rollout is paused, canary %s keep%s the new revision", nodes, s)
	if spec.OnFailure == nasv1alpha1.CanaryFailureRollback {
		then = fmt.Sprintf("canary %s get%s revision %s back", nodes, s, st.StableRevision)
	}
	return fmt.Sprintf("revision %s failed its canary: %s; %s", st.Revision, why, then)
}

// canaryReasons are the Canary condition's status and reason for each phase.
var canaryReasons = map[nasv1alpha1.CanaryPhase]struct {
	status metav1.ConditionStatus
	reason string
}{
	nasv1alpha1.CanaryProgressing:         {metav1.ConditionUnknown, nasv1alpha1.ReasonCanaryProgressing},
	nasv1alpha1.CanaryWatching:            {metav1.ConditionUnknown, nasv1alpha1.ReasonCanaryWatching},
	nasv1alpha1.CanaryWaitingForPromotion: {metav1.ConditionUnknown, nasv1alpha1.ReasonCanaryWaitingForPromotion},
	nasv1alpha1.CanarySucceeded:           {metav1.ConditionTrue, nasv1alpha1.ReasonCanarySucceeded},
	nasv1alpha1.CanaryFailed:              {metav1.ConditionFalse, nasv1alpha1.ReasonCanaryFailed},
	nasv1alpha1.CanaryAborted:             {metav1.ConditionFalse, nasv1alpha1.ReasonCanaryAborted},
}

// CanaryCondition renders the plan's canary verdict; false means the set has no canary and the
// condition should be removed.
func CanaryCondition(p Plan) (metav1.Condition, bool) {
	if p.Canary == nil {
		return metav1.Condition{}, false
	}
	r := canaryReasons[p.Canary.Phase]
	return metav1.Condition{Type: nasv1alpha1.ConditionCanary, Status: r.status, Reason: r.reason, Message: p.Canary.Message}, true
}
