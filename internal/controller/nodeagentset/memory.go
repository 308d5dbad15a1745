package nodeagentset

import (
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
	"github.com/nodeagentset/nodeagentset/internal/planner"
)

// memory is everything the controller remembers about a set from one pass to the next: the API
// server's verdict on its template, the failed-pod backoff of its nodes, the slow-start window of its
// creates and the times of its status writes. None of it is a decision: what the planner needs of it
// goes into planner.Input, and the rest paces the controller's own API calls. A set's memory is
// dropped when the set is gone (forget), and starts afresh when a set of the same name has another UID.
type memory struct {
	mu   sync.Mutex
	sets map[types.NamespacedName]*setMemory
}

// setMemory is one set's memory. It is only read and changed under memory.mu, through memory.with.
type setMemory struct {
	uid types.UID

	// template is the verdict on the template of revision templateHash; templateRetries counts the
	// ServiceAccountMissing or CheckFailed verdicts of the same state in a row, for that template: they
	// space the rechecks.
	templateHash    string
	template        planner.TemplateVerdict
	templateRetries int

	// failedPods is the failed-pod backoff of each node (rule 30).
	failedPods map[string]podBackoff

	// slowStart is the window the last pass reached with every create accepted (see createNodePods).
	slowStart slowStartWindow

	// statusWrittenAt is when status was last written; pending is the status a pass held back, and
	// pendingSince when a pass first computed it (see statusWait).
	statusWrittenAt time.Time
	pending         *nasv1alpha1.NodeAgentSetStatus
	pendingSince    time.Time
}

func newMemory() *memory {
	return &memory{sets: map[types.NamespacedName]*setMemory{}}
}

// with runs f on the set's memory, under the lock.
func (m *memory) with(set *nasv1alpha1.NodeAgentSet, f func(*setMemory)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	key := client.ObjectKeyFromObject(set)
	s := m.sets[key]
	if s == nil || s.uid != set.UID {
		s = &setMemory{uid: set.UID}
		m.sets[key] = s
	}
	f(s)
}

// forget drops the memory of a set that no longer exists.
func (m *memory) forget(key types.NamespacedName) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.sets, key)
}

// collectGarbage drops failed-pod backoff entries that expired (unused for twice the longest backoff),
// as flowcontrol.Backoff's GC does.
func (m *memory) collectGarbage(now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, s := range m.sets {
		for node, b := range s.failedPods {
			if b.expired(now) {
				delete(s.failedPods, node)
			}
		}
	}
}

// Template verdicts.

// templateVerdict is the verdict on the template of revision hash; Unchecked when there is none.
func (m *memory) templateVerdict(set *nasv1alpha1.NodeAgentSet, hash string) planner.TemplateVerdict {
	var v planner.TemplateVerdict
	m.with(set, func(s *setMemory) {
		if s.templateHash == hash {
			v = s.template
		}
	})
	return v
}

// recordTemplateVerdict keeps the API server's answer on the template of revision hash, with the time
// it may be asked again: never for Accepted, templateRejectedRecheck for Rejected, and a delay that
// doubles with every answer in a row for ServiceAccountMissing and CheckFailed.
func (m *memory) recordTemplateVerdict(set *nasv1alpha1.NodeAgentSet, hash string, state planner.TemplateState, message string,
	now time.Time) planner.TemplateVerdict {
	var v planner.TemplateVerdict
	m.with(set, func(s *setMemory) {
		if s.templateHash != hash || s.template.State != state {
			s.templateRetries = 0
		}
		v = planner.TemplateVerdict{State: state, Message: message}
		switch state {
		case planner.TemplateRejected:
			v.RecheckAt = now.Add(templateRejectedRecheck)
		case planner.TemplateServiceAccountMissing:
			v.RecheckAt = now.Add(doubled(serviceAccountRecheckInitial, serviceAccountRecheckMax, s.templateRetries))
			s.templateRetries++
		case planner.TemplateCheckFailed:
			v.RecheckAt = now.Add(doubled(checkFailedRecheckInitial, checkFailedRecheckMax, s.templateRetries))
			s.templateRetries++
		}
		s.templateHash, s.template = hash, v
	})
	return v
}

// doubled is initial doubled n times, at most limit.
func doubled(initial, limit time.Duration, n int) time.Duration {
	d := initial
	for range n {
		if d >= limit/2 {
			return limit
		}
		d *= 2
	}
	return min(d, limit)
}

// Failed-pod backoff.

// podBackoff is one node's failed-pod backoff: the delay of its last failed-pod deletion, and when.
// It belongs to a generation of the set: a new generation (say, a fixed template) starts afresh.
type podBackoff struct {
	generation int64
	delay      time.Duration
	at         time.Time
}

func (b podBackoff) expired(now time.Time) bool {
	return now.Sub(b.at) > 2*failedPodBackoffMax
}

// failedPodBackoff returns, for each node whose failed pod was deleted within its backoff, until when
// the next deletion must wait.
func (m *memory) failedPodBackoff(set *nasv1alpha1.NodeAgentSet, now time.Time) map[string]time.Time {
	var out map[string]time.Time
	m.with(set, func(s *setMemory) {
		for node, b := range s.failedPods {
			if b.generation == set.Generation && now.Sub(b.at) < b.delay {
				if out == nil {
					out = map[string]time.Time{}
				}
				out[node] = b.at.Add(b.delay)
			}
		}
	})
	return out
}

// failedPodDeleted starts or doubles the backoff of a node whose failed pod is deleted.
func (m *memory) failedPodDeleted(set *nasv1alpha1.NodeAgentSet, node string, now time.Time) {
	m.with(set, func(s *setMemory) {
		if s.failedPods == nil {
			s.failedPods = map[string]podBackoff{}
		}
		b, ok := s.failedPods[node]
		if !ok || b.generation != set.Generation || b.expired(now) {
			b = podBackoff{generation: set.Generation, delay: failedPodBackoffInitial}
		} else {
			b.delay = min(2*b.delay, failedPodBackoffMax)
		}
		b.at = now
		s.failedPods[node] = b
	})
}
