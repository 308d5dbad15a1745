package nodeagentset

import (
	"context"
	"fmt"
	"time"

	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
	"github.com/nodeagentset/nodeagentset/internal/planner"
)

// statusInput is what the new status is derived from.
type statusInput struct {
	set  *nasv1alpha1.NodeAgentSet
	plan planner.Plan
	// hash is the controller-revision-hash of the current template.
	hash string
	// synced: the pass carried out its plan without error, so observedGeneration may advance.
	synced bool
	now    metav1.Time
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
	st.NumberGated = in.plan.Gate.NumberGated
	st.UpdateRevision = in.hash
	st.CurrentRevision = in.plan.CurrentRevision
	st.UnavailableBreakdown, st.TopUnavailableReason = unavailableBreakdown(in.plan.Unavailable)
	st.SkippedNodes = skippedNodes(in.plan.Rollout.Skipped)
	if in.synced {
		st.ObservedGeneration = in.set.Generation
	}
	setCondition(&st, in.now, availableCondition(in))
	setCondition(&st, in.now, progressingCondition(in))
	if gate, ok := planner.GateCondition(in.plan); ok {
		setCondition(&st, in.now, gate)
	} else {
		meta.RemoveStatusCondition(&st.Conditions, nasv1alpha1.ConditionNodeReadinessGate)
	}
	st.Canary = in.plan.Canary
	if canary, ok := planner.CanaryCondition(in.plan); ok {
		setCondition(&st, in.now, canary)
	} else {
		meta.RemoveStatusCondition(&st.Conditions, nasv1alpha1.ConditionCanary)
	}
	if valid, ok := planner.TemplateValidCondition(in.plan); ok {
		setCondition(&st, in.now, valid)
	} else {
		meta.RemoveStatusCondition(&st.Conditions, nasv1alpha1.ConditionPodTemplateValid)
	}
	return st
}

// unavailableBreakdown is the plan's breakdown of the unavailable nodes as status shows it, and the
// reason of most of them.
func unavailableBreakdown(groups []planner.UnavailableGroup) ([]nasv1alpha1.UnavailableReason, string) {
	if len(groups) == 0 {
		return nil, ""
	}
	out := make([]nasv1alpha1.UnavailableReason, 0, len(groups))
	for _, g := range groups {
		out = append(out, nasv1alpha1.UnavailableReason{Reason: string(g.Code), Count: g.Count,
			Nodes: append([]string(nil), g.Nodes[:min(len(g.Nodes), nasv1alpha1.MaxNodesPerReason)]...)})
	}
	return out, out[0].Reason
}

// skippedNodes are the unhealthy nodes the plan's rollout skips, as status shows them.
func skippedNodes(skipped []planner.StuckNode) *nasv1alpha1.SkippedNodes {
	if len(skipped) == 0 {
		return nil
	}
	out := &nasv1alpha1.SkippedNodes{Count: int32(len(skipped))}
	for _, s := range skipped[:min(len(skipped), nasv1alpha1.MaxNodesPerReason)] {
		out.Nodes = append(out.Nodes, s.Node)
	}
	return out
}

// progressingCondition says where the rollout of the current template stands, as the planner
// renders its rollout verdict.
func progressingCondition(in statusInput) metav1.Condition {
	return planner.ProgressingCondition(in.plan, in.hash)
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

// availableCondition says whether every eligible node runs an available agent and, if not, why, as
// the planner renders it.
func availableCondition(in statusInput) metav1.Condition {
	return planner.AvailableCondition(in.plan)
}

// Writing status.
//
// A pass computes the status from its plan and writes it, with one server-side apply, when it
// differs from the stored one. Only a change of counters (and of condition wording) can be held back,
// and only while the set is in motion (inMotion): while pods come and go in bulk (coverage of a large
// cluster, a rollout) every pass would otherwise write status, and counters that the next pass moves
// again. Such a change waits until statusWriteInterval after the set's last write, or until the
// status the passes compute has stayed the same for statusQuietPeriod (the world stopped changing),
// whichever comes first. Everything else is written at once: a new generation, revision or
// collisionCount, a condition turning (other than Available, which follows numberAvailable), a
// settled status, a milestone, the first write after the controller starts, and any change once the
// set is no longer in motion.

// statusWriteInterval is the least time between two counter-only writes of a set in motion.
const statusWriteInterval = 10 * time.Second

// statusConflictRetry is when a pass whose status write was refused (the set changed since the pass
// read it) comes back: a change of the spec or of the canary decision brings it back sooner, but a
// change of labels or of another writer's status fields does not.
const statusConflictRetry = time.Second

// statusQuietPeriod is how long the status of a set in motion must stay the same for its held-back
// counters to be written: the pod events have stopped, and the counters are what the world is.
const statusQuietPeriod = 500 * time.Millisecond

// writeStatus writes the status derived from the pass, once, when it changed; see above. It returns
// how long a held-back write waits: the pass that comes back then writes the counters of its time.
//
// The write is conditional on the set's resourceVersion as the pass read it: a pass planned on a set
// that has changed since (a cache that lagged, another writer) must not put its verdict over a newer
// one, such as a canary that failed (docs/design/canary.md). It is refused with a conflict and the pass
// comes back after statusConflictRetry, on the set as it is then. The write goes through the typed
// object, so that the read-your-writes client makes the next pass's read of the set wait for it
// (docs/design/stale-cache.md).
func (r *Reconciler) writeStatus(ctx context.Context, set *nasv1alpha1.NodeAgentSet, plan planner.Plan, hash string, synced bool) (time.Duration, error) {
	// The pass's pod writes took time (seconds at a low client rate): the intervals count from when
	// they and the status writes happened, not from when the pass began.
	now := r.Clock.Now()
	updated := computeStatus(statusInput{set: set, plan: plan, hash: hash, synced: synced, now: metav1.NewTime(now)})
	r.Metrics.observeStatus(set, &updated)
	why, wait := r.memory.statusWait(set, &set.Status, &updated, inMotion(plan), now)
	if why == "" || wait > 0 {
		return wait, nil
	}
	err := r.applyStatus(ctx, set, &updated)
	if apierrors.IsConflict(err) {
		log.FromContext(ctx).V(1).Info("Status not written: the set changed since the pass read it", "resourceVersion", set.ResourceVersion)
		return statusConflictRetry, nil
	}
	if err != nil {
		return 0, err
	}
	r.memory.statusWritten(set, r.Clock.Now())
	log.FromContext(ctx).V(1).Info("Wrote status", "why", why, "desired", updated.DesiredNumberScheduled,
		"current", updated.CurrentNumberScheduled, "ready", updated.NumberReady, "available", updated.NumberAvailable,
		"updated", updated.UpdatedNumberScheduled, "misscheduled", updated.NumberMisscheduled,
		"creates", len(plan.Creates), "deletes", len(plan.Deletes))
	return 0, nil
}

// writeSelectorMismatch reports a set whose selector cannot own its template's pods
// (planner.SelectorMismatch): PodTemplateValid turns False with reason SelectorMismatch and the
// generation counts as observed, since nothing more can be done for it until the spec changes. The
// rest of the status stays as it was; nothing is written when it already says so.
func (r *Reconciler) writeSelectorMismatch(ctx context.Context, set *nasv1alpha1.NodeAgentSet, mismatch string) error {
	updated := set.Status.DeepCopy()
	updated.ObservedGeneration = set.Generation
	setCondition(updated, metav1.NewTime(r.Clock.Now()), planner.SelectorMismatchCondition(mismatch))
	if apiequality.Semantic.DeepEqual(&set.Status, updated) {
		return nil
	}
	if err := r.applyStatus(ctx, set, updated); err != nil {
		return err
	}
	log.FromContext(ctx).Info("Selector cannot own the template's pods", "why", mismatch)
	return nil
}

// applyStatus writes st as the set's status with one server-side apply through the typed object,
// conditional on the resourceVersion the pass read (see writeStatus). A conflict is returned as is
// (apierrors.IsConflict); other errors are wrapped.
func (r *Reconciler) applyStatus(ctx context.Context, set *nasv1alpha1.NodeAgentSet, st *nasv1alpha1.NodeAgentSetStatus) error {
	patch, err := statusApplyPatch(set, st)
	if err != nil {
		return err
	}
	written := &nasv1alpha1.NodeAgentSet{ObjectMeta: metav1.ObjectMeta{Namespace: set.Namespace, Name: set.Name}}
	err = r.Client.Status().Patch(ctx, written, client.RawPatch(types.ApplyPatchType, patch), client.FieldOwner(ControllerName),
		client.ForceOwnership)
	if err != nil && !apierrors.IsConflict(err) {
		return fmt.Errorf("writing status: %w", err)
	}
	return err
}

// inMotion: the controller still has work to do on the set: the plan writes pods or asks for a
// template check, or the rollout of the current template is not complete (pods to create, replace,
// or wait for).
func inMotion(plan planner.Plan) bool {
	return len(plan.Creates) > 0 || len(plan.Deletes) > 0 || plan.CheckTemplateOn != "" || !plan.Rollout.Complete
}

// Why a status is written, for the log: the rules of statusWait, in order.
const (
	writeChanged   = "changed"   // generation, revisions, collisionCount or a condition turning.
	writeFirst     = "first"     // the first write since the controller started.
	writeSettled   = "settled"   // see settled.
	writeMilestone = "milestone" // see milestone.
	writeAtRest    = "at rest"   // counters of a set that is not in motion.
	writeQuiet     = "quiet"     // counters that stayed the same for statusQuietPeriod.
	writeInterval  = "interval"  // counters, statusWriteInterval after the last write.
)

// statusWait decides on the write of updated over old: why it is written, and how long it must wait
// first (0: write now). why is empty when there is nothing to write. A held-back status is
// remembered, with the time a pass first computed it, for the quiet period.
func (m *memory) statusWait(set *nasv1alpha1.NodeAgentSet, old, updated *nasv1alpha1.NodeAgentSetStatus, moving bool,
	now time.Time) (why string, wait time.Duration) {
	m.with(set, func(s *setMemory) {
		if apiequality.Semantic.DeepEqual(old, updated) {
			s.pending = nil
			return
		}
		switch {
		case !countersOnly(old, updated):
			why = writeChanged
		case s.statusWrittenAt.IsZero():
			why = writeFirst
		case settled(updated):
			why = writeSettled
		case milestone(old, updated):
			why = writeMilestone
		case !moving:
			why = writeAtRest
		}
		if why != "" {
			return
		}
		if s.pending == nil || !sameStatus(s.pending, updated) {
			s.pending, s.pendingSince = updated.DeepCopy(), now
		}
		// Whichever comes first: the quiet period, or the interval.
		quiet := s.pendingSince.Add(statusQuietPeriod).Sub(now)
		interval := s.statusWrittenAt.Add(statusWriteInterval).Sub(now)
		if quiet <= interval {
			why, wait = writeQuiet, max(0, quiet)
		} else {
			why, wait = writeInterval, max(0, interval)
		}
	})
	return why, wait
}

// statusWritten records that the set's status was written.
func (m *memory) statusWritten(set *nasv1alpha1.NodeAgentSet, now time.Time) {
	m.with(set, func(s *setMemory) {
		s.statusWrittenAt, s.pending = now, nil
	})
}

// sameStatus: two derived statuses are equal but for when their conditions turned.
func sameStatus(a, b *nasv1alpha1.NodeAgentSetStatus) bool {
	if len(a.Conditions) != len(b.Conditions) {
		return false
	}
	a, b = a.DeepCopy(), b.DeepCopy()
	for i := range a.Conditions {
		a.Conditions[i].LastTransitionTime, b.Conditions[i].LastTransitionTime = metav1.Time{}, metav1.Time{}
	}
	return apiequality.Semantic.DeepEqual(a, b)
}

// countersOnly: the two statuses differ in counters and condition wording at most: not in
// observedGeneration, revisions, collisionCount, the conditions present, or any condition's status,
// except Available's, which follows numberAvailable (turning True is settled or a milestone; turning
// False for a template is written with PodTemplateValid turning). It compares typed fields only, never
// a condition's reason.
func countersOnly(old, updated *nasv1alpha1.NodeAgentSetStatus) bool {
	if old.ObservedGeneration != updated.ObservedGeneration || old.UpdateRevision != updated.UpdateRevision ||
		old.CurrentRevision != updated.CurrentRevision || !apiequality.Semantic.DeepEqual(old.CollisionCount, updated.CollisionCount) ||
		!apiequality.Semantic.DeepEqual(old.Canary, updated.Canary) ||
		len(old.Conditions) != len(updated.Conditions) {
		return false
	}
	for i := range old.Conditions {
		o, u := old.Conditions[i], updated.Conditions[i]
		if o.Type != u.Type || o.ObservedGeneration != u.ObservedGeneration {
			return false
		}
		if o.Status != u.Status && u.Type != nasv1alpha1.ConditionAvailable {
			return false
		}
	}
	return true
}

// milestone: a state that holds until time passes rather than until the controller acts, or that
// ends a rollout: every node runs a Ready pod while some wait out minReadySeconds before they count
// as available; every node runs a pod of the current template; no pod is left on a node it should
// not be on. These are written at once even while the set is in motion. (Counters that reach the
// desired number between the steps of a rollout, such as every node having a pod again, are not
// milestones: at every step they would cost a write.)
func milestone(old, updated *nasv1alpha1.NodeAgentSetStatus) bool {
	n := updated.DesiredNumberScheduled
	reaches := func(o, u int32) bool { return u == n && o != n }
	return (reaches(old.NumberReady, updated.NumberReady) && updated.NumberAvailable < n) ||
		reaches(old.UpdatedNumberScheduled, updated.UpdatedNumberScheduled) ||
		(updated.NumberMisscheduled == 0 && old.NumberMisscheduled != 0)
}

// settled: every eligible node runs an available pod of the current template, and no other node runs
// one. A status that reaches this is written without delay.
func settled(s *nasv1alpha1.NodeAgentSetStatus) bool {
	n := s.DesiredNumberScheduled
	return s.CurrentNumberScheduled == n && s.NumberReady == n && s.NumberAvailable == n &&
		s.UpdatedNumberScheduled == n && s.NumberUnavailable == 0 && s.NumberMisscheduled == 0
}

// ownedConditionTypes are the condition types this controller writes; it leaves all others alone.
var ownedConditionTypes = map[string]bool{
	nasv1alpha1.ConditionAvailable:         true,
	nasv1alpha1.ConditionProgressing:       true,
	nasv1alpha1.ConditionPodTemplateValid:  true,
	nasv1alpha1.ConditionNodeReadinessGate: true,
	nasv1alpha1.ConditionCanary:            true,
}

// statusApplyPatch is the server-side apply request for the status fields this controller owns: the
// counters, observedGeneration, the revisions, collisionCount, the canary and its own condition types;
// with the set's resourceVersion, which makes the write conditional on it.
func statusApplyPatch(set *nasv1alpha1.NodeAgentSet, st *nasv1alpha1.NodeAgentSetStatus) ([]byte, error) {
	owned := st.DeepCopy()
	owned.Conditions = nil
	for _, c := range st.Conditions {
		if ownedConditionTypes[c.Type] {
			owned.Conditions = append(owned.Conditions, c)
		}
	}
	status, err := runtime.DefaultUnstructuredConverter.ToUnstructured(owned)
	if err != nil {
		return nil, fmt.Errorf("converting status: %w", err)
	}
	u := &unstructured.Unstructured{Object: map[string]any{"status": status}}
	u.SetGroupVersionKind(nasv1alpha1.GroupVersion.WithKind("NodeAgentSet"))
	u.SetNamespace(set.Namespace)
	u.SetName(set.Name)
	u.SetResourceVersion(set.ResourceVersion)
	data, err := u.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("encoding status: %w", err)
	}
	return data, nil
}
