package nodeagentset

import (
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/types"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
)

// statusWriteInterval is the least time between two status writes of one set that only move its
// counters. While pods come and go in bulk (coverage of a large cluster, a rollout) every pass would
// otherwise write status: one write per pod event at an unlimited client budget. The counters of a
// set in motion may so lag up to this long; a status that settles, or that changes generation,
// revisions or the state of a condition, is written at once. Two seconds: a rollout step of a
// rate-limited controller (upstream's 20 requests a second) takes several, and the passes of one step
// while its pods turn Ready then share one write.
const statusWriteInterval = 2 * time.Second

// busyStatusWriteInterval replaces statusWriteInterval for a pass that created or deleted pods: the
// events of those pods bring the next pass, which sees a newer world, so this pass's counters are
// written only if the last write is this old. A pass with nothing to do writes the counters it sees.
const busyStatusWriteInterval = 10 * time.Second

// statusWrites remembers when each set's status was last written.
type statusWrites struct {
	mu   sync.Mutex
	last map[types.NamespacedName]time.Time
}

func newStatusWrites() *statusWrites {
	return &statusWrites{last: map[types.NamespacedName]time.Time{}}
}

// wait returns how long the write of updated over old must wait: 0 to write now. busy says that the
// pass created or deleted pods.
func (w *statusWrites) wait(key types.NamespacedName, old, updated *nasv1alpha1.NodeAgentSetStatus, busy bool, now time.Time) time.Duration {
	if !countersOnly(old, updated) || settled(updated) {
		return 0
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	last, ok := w.last[key]
	if !ok {
		return 0
	}
	interval := statusWriteInterval
	if busy {
		interval = busyStatusWriteInterval
	}
	return max(0, last.Add(interval).Sub(now))
}

func (w *statusWrites) wrote(key types.NamespacedName, now time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.last[key] = now
}

func (w *statusWrites) forget(key types.NamespacedName) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.last, key)
}

// countersOnly: the two statuses differ in counters and condition wording at most, not in
// observedGeneration, revisions, collisionCount or any condition's type, status or reason.
func countersOnly(old, updated *nasv1alpha1.NodeAgentSetStatus) bool {
	if old.ObservedGeneration != updated.ObservedGeneration || old.UpdateRevision != updated.UpdateRevision ||
		old.CurrentRevision != updated.CurrentRevision || !equality.Semantic.DeepEqual(old.CollisionCount, updated.CollisionCount) ||
		len(old.Conditions) != len(updated.Conditions) {
		return false
	}
	for i := range old.Conditions {
		o, u := old.Conditions[i], updated.Conditions[i]
		if o.Type != u.Type || o.Status != u.Status || o.Reason != u.Reason || o.ObservedGeneration != u.ObservedGeneration {
			return false
		}
	}
	return true
}

// settled: every eligible node runs an available pod of the current template, and no other node runs
// one. A status that reaches this is written without delay.
func settled(s *nasv1alpha1.NodeAgentSetStatus) bool {
	n := s.DesiredNumberScheduled
	return s.CurrentNumberScheduled == n && s.NumberReady == n && s.NumberAvailable == n &&
		s.UpdatedNumberScheduled == n && s.NumberUnavailable == 0 && s.NumberMisscheduled == 0
}
