package nodeagentset

import (
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
)

// statusWriteInterval is the least time between two status writes of one set that only move its
// counters, while the set is at rest. A status that settles, reaches a milestone (see milestone), or
// changes generation, revisions or the state of a condition, is written at once.
const statusWriteInterval = 2 * time.Second

// busyStatusWriteInterval replaces statusWriteInterval while the set is in motion: a pass created or
// deleted pods, or one did within this interval. While pods come and go in bulk (coverage of a large
// cluster, a rollout) every pass would otherwise write status, and a rate-limited controller's passes
// alternate between long ones that write pods and short ones that wait for them to turn Ready: each
// of those would write counters that the next pass moves again. The counters of a set in motion so
// lag up to this long; milestones (every node Ready while pods wait out minReadySeconds, every node
// updated) and the settled end are written at once.
const busyStatusWriteInterval = 10 * time.Second

// statusWrites remembers, per set, when its status was last written and when a pass last created or
// deleted its pods.
type statusWrites struct {
	mu   sync.Mutex
	sets map[types.NamespacedName]setWrites
}

// setWrites are one set's write times; zero when there was none.
type setWrites struct {
	status, pods time.Time
}

func newStatusWrites() *statusWrites {
	return &statusWrites{sets: map[types.NamespacedName]setWrites{}}
}

// podsWritten records that a pass created or deleted pods of the set.
func (w *statusWrites) podsWritten(key types.NamespacedName, now time.Time) {
	w.update(key, func(s *setWrites) { s.pods = now })
}

// wrote records that the set's status was written.
func (w *statusWrites) wrote(key types.NamespacedName, now time.Time) {
	w.update(key, func(s *setWrites) { s.status = now })
}

func (w *statusWrites) update(key types.NamespacedName, f func(*setWrites)) {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.sets[key]
	f(&s)
	w.sets[key] = s
}

// wait returns how long the write of updated over old must wait: 0 to write now.
func (w *statusWrites) wait(key types.NamespacedName, old, updated *nasv1alpha1.NodeAgentSetStatus, now time.Time) time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.sets[key]
	if writeReason(old, updated) != writeCounters || s.status.IsZero() {
		return 0
	}
	interval := statusWriteInterval
	if !s.pods.IsZero() && now.Sub(s.pods) <= busyStatusWriteInterval {
		interval = busyStatusWriteInterval
	}
	return max(0, s.status.Add(interval).Sub(now))
}

// Why a status is written, for the log: the rules of wait, in order.
const (
	writeChanged   = "changed"   // generation, revisions, collisionCount or a condition's state
	writeSettled   = "settled"   // see settled
	writeMilestone = "milestone" // see milestone
	writeCounters  = "counters"  // counters alone, once the interval has passed
)

func writeReason(old, updated *nasv1alpha1.NodeAgentSetStatus) string {
	switch {
	case !countersOnly(old, updated):
		return writeChanged
	case settled(updated):
		return writeSettled
	case milestone(old, updated):
		return writeMilestone
	default:
		return writeCounters
	}
}

func (w *statusWrites) forget(key types.NamespacedName) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.sets, key)
}

// countersOnly: the two statuses differ in counters and condition wording at most, not in
// observedGeneration, revisions, collisionCount or any condition's type, status or reason; except that
// the Available condition turning between AllNodesAvailable and NodesUnavailable is a counter change
// too, as it only follows numberAvailable (turning True is a milestone, written at once).
func countersOnly(old, updated *nasv1alpha1.NodeAgentSetStatus) bool {
	if old.ObservedGeneration != updated.ObservedGeneration || old.UpdateRevision != updated.UpdateRevision ||
		old.CurrentRevision != updated.CurrentRevision || !equality.Semantic.DeepEqual(old.CollisionCount, updated.CollisionCount) ||
		len(old.Conditions) != len(updated.Conditions) {
		return false
	}
	for i := range old.Conditions {
		o, u := old.Conditions[i], updated.Conditions[i]
		if o.Type != u.Type || o.ObservedGeneration != u.ObservedGeneration {
			return false
		}
		stateChanged := o.Status != u.Status || o.Reason != u.Reason
		if stateChanged && (!availabilityOnly(o) || !availabilityOnly(u)) {
			return false
		}
	}
	return true
}

// availabilityOnly: an Available condition whose state follows numberAvailable alone.
func availabilityOnly(c metav1.Condition) bool {
	return c.Type == nasv1alpha1.ConditionAvailable &&
		(c.Reason == nasv1alpha1.ReasonAllNodesAvailable || c.Reason == nasv1alpha1.ReasonNodesUnavailable)
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
