package nodeagentset

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
	"github.com/nodeagentset/nodeagentset/internal/planner"
)

// maxReasonsInMessage caps how many distinct causes a condition message lists.
const maxReasonsInMessage = 3

// statusInput is what the new status is derived from.
type statusInput struct {
	set  *nasv1alpha1.NodeAgentSet
	plan planner.Plan
	// hash is the controller-revision-hash of the current template.
	hash string
	// synced: the pass carried out its plan without error, so observedGeneration may advance.
	synced bool
	// template is the dry-run verdict on the current template, nil when none was needed.
	template *templateVerdict
	now      metav1.Time
}

// computeStatus derives the set's status from one pass: counters from the plan, observedGeneration
// when the pass succeeded, and the conditions this controller owns. Conditions of other types are
// kept as they are. Pure: the caller decides whether to write.
func computeStatus(in statusInput) nasv1alpha1.NodeAgentSetStatus {
	st := *in.set.Status.DeepCopy()
	c := in.plan.Status
	st.DesiredNumberScheduled = c.DesiredNumberScheduled
	st.CurrentNumberScheduled = c.CurrentNumberScheduled
	st.NumberMisscheduled = c.NumberMisscheduled
	st.NumberReady = c.NumberReady
	st.NumberAvailable = c.NumberAvailable
	st.NumberUnavailable = c.NumberUnavailable
	st.UpdatedNumberScheduled = c.UpdatedNumberScheduled
	st.UpdateRevision = in.hash
	st.CurrentRevision = in.plan.CurrentRevision
	if in.synced {
		st.ObservedGeneration = in.set.Generation
	}
	setCondition(&st, in.now, availableCondition(in))
	setCondition(&st, in.now, progressingCondition(in))
	switch {
	case in.template == nil:
		meta.RemoveStatusCondition(&st.Conditions, nasv1alpha1.ConditionPodTemplateValid)
	case in.template.accepted:
		setCondition(&st, in.now, metav1.Condition{Type: nasv1alpha1.ConditionPodTemplateValid, Status: metav1.ConditionTrue,
			Reason: nasv1alpha1.ReasonPodTemplateAccepted, Message: "The API server accepts the pod template (server-side dry-run)"})
	default:
		setCondition(&st, in.now, metav1.Condition{Type: nasv1alpha1.ConditionPodTemplateValid, Status: metav1.ConditionFalse,
			Reason: nasv1alpha1.ReasonPodTemplateRejected, Message: "The API server rejects the pod template: " + in.template.message})
	}
	return st
}

// defaultProgressDeadline applies when spec.progressDeadlineSeconds is unset (objects stored before
// the field had a default).
const defaultProgressDeadline = 600 * time.Second

// maxStuckNodesInMessage caps how many stuck nodes the Progressing message names.
const maxStuckNodesInMessage = 5

// progressDeadline is when a rolling update that is neither complete nor paused counts as stuck.
func progressDeadline(set *nasv1alpha1.NodeAgentSet, r planner.Rollout) (time.Time, bool) {
	if set.Spec.UpdateStrategy.Type == nasv1alpha1.OnDeleteStrategyType || r.Complete || r.Paused || r.LastProgress.IsZero() {
		return time.Time{}, false
	}
	d := defaultProgressDeadline
	if set.Spec.ProgressDeadlineSeconds != nil {
		d = time.Duration(*set.Spec.ProgressDeadlineSeconds) * time.Second
	}
	return r.LastProgress.Add(d), true
}

// progressingCondition says where the rollout of the current template stands.
func progressingCondition(in statusInput) metav1.Condition {
	r := in.plan.Rollout
	cond := metav1.Condition{Type: nasv1alpha1.ConditionProgressing, Status: metav1.ConditionTrue}
	progress := fmt.Sprintf("%d of %d eligible nodes run an available pod of revision %s", r.UpdatedAvailable, r.Target, in.hash)
	if r.Partition > 0 {
		progress += fmt.Sprintf("; partition: %d nodes, from %s on by name, keep their pods", r.Partition, r.FirstPartitionedNode)
	}
	if in.plan.SurgeBlockedByHostPort {
		progress += "; the template binds host ports, so maxSurge is applied delete-first"
	}
	deadline, rolling := progressDeadline(in.set, r)
	switch {
	case r.Complete:
		cond.Reason, cond.Message = nasv1alpha1.ReasonRolloutComplete, progress
	case in.set.Spec.UpdateStrategy.Type == nasv1alpha1.OnDeleteStrategyType:
		cond.Reason = nasv1alpha1.ReasonWaitingForDeletion
		cond.Message = progress + "; strategy OnDelete: old pods are replaced when deleted"
	case r.Paused:
		cond.Status, cond.Reason = metav1.ConditionUnknown, nasv1alpha1.ReasonRolloutPaused
		cond.Message = progress + "; paused"
	case rolling && !in.now.Time.Before(deadline):
		cond.Status, cond.Reason = metav1.ConditionFalse, nasv1alpha1.ReasonProgressDeadlineExceeded
		cond.Message = fmt.Sprintf("no progress since %s: %s; stuck: %s",
			r.LastProgress.UTC().Format(time.RFC3339), progress, renderStuck(r.Stuck))
	default:
		cond.Reason, cond.Message = nasv1alpha1.ReasonRollingOut, progress
	}
	return cond
}

// renderStuck names the first stuck nodes with their reasons.
func renderStuck(stuck []planner.StuckNode) string {
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

func setCondition(st *nasv1alpha1.NodeAgentSetStatus, now metav1.Time, c metav1.Condition) {
	c.ObservedGeneration = 0
	if existing := meta.FindStatusCondition(st.Conditions, c.Type); existing != nil &&
		existing.Status == c.Status && existing.Reason == c.Reason && existing.Message == c.Message {
		return
	}
	c.LastTransitionTime = now
	meta.SetStatusCondition(&st.Conditions, c)
}

// availableCondition says whether every eligible node runs an available agent and, if not, why; it
// also names why nodes are excluded, so "why is there no agent on my node" has an answer on the set.
func availableCondition(in statusInput) metav1.Condition {
	c := in.plan.Status
	unavailable, excluded := groupReasons(in.plan.Nodes)
	cond := metav1.Condition{Type: nasv1alpha1.ConditionAvailable}
	switch {
	case in.template != nil && !in.template.accepted && c.NumberAvailable < c.DesiredNumberScheduled:
		cond.Status, cond.Reason = metav1.ConditionFalse, nasv1alpha1.ReasonPodTemplateRejected
		cond.Message = fmt.Sprintf("%d of %d eligible nodes have no available agent pod: the API server rejects the pod template",
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

// groupReasons renders "2 nodes: taint dedicated=gpu:NoSchedule not tolerated, 1 node: ..." for the
// unavailable and the excluded nodes, most frequent cause first.
func groupReasons(states map[string]planner.NodeState) (unavailable, excluded string) {
	unavailableCounts, excludedCounts := map[string]int{}, map[string]int{}
	for _, s := range states {
		reason := s.Reason()
		if s.Placement.ShouldRun {
			unavailableCounts[reason]++
		} else {
			excludedCounts[reason]++
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

// statusChanged: the derived status differs from the stored one.
func statusChanged(old, updated *nasv1alpha1.NodeAgentSetStatus) bool {
	return !equality.Semantic.DeepEqual(old, updated)
}
