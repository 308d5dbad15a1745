package nodeagentset

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
	"github.com/nodeagentset/nodeagentset/internal/planner"
)

func TestFailedPodBackoff(t *testing.T) {
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	set := &nasv1alpha1.NodeAgentSet{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "agent", UID: "uid-1", Generation: 1}}
	m := newMemory()
	if got := m.failedPodBackoff(set, now); got != nil {
		t.Fatalf("backoff before any deletion: %v", got)
	}
	m.failedPodDeleted(set, "a", now)
	if got := m.failedPodBackoff(set, now)["a"]; !got.Equal(now.Add(failedPodBackoffInitial)) {
		t.Errorf("after one deletion: until %v, want %v", got, now.Add(failedPodBackoffInitial))
	}
	m.failedPodDeleted(set, "a", now.Add(time.Second))
	if got := m.failedPodBackoff(set, now.Add(time.Second))["a"]; !got.Equal(now.Add(3 * time.Second)) {
		t.Errorf("after a second deletion: until %v, want the doubled delay, %v", got, now.Add(3*time.Second))
	}
	if got := m.failedPodBackoff(set, now.Add(3*time.Second)); got != nil {
		t.Errorf("once the delay passed: %v, want none", got)
	}

	t.Run("the delay stops at the maximum", func(t *testing.T) {
		at := now
		for range 20 {
			m.failedPodDeleted(set, "b", at)
		}
		if got := m.failedPodBackoff(set, at)["b"]; !got.Equal(at.Add(failedPodBackoffMax)) {
			t.Errorf("until %v, want %v", got, at.Add(failedPodBackoffMax))
		}
	})
	t.Run("a new generation starts afresh", func(t *testing.T) {
		next := set.DeepCopy()
		next.Generation = 2
		if got := m.failedPodBackoff(next, now); got != nil {
			t.Errorf("backoff of the old generation applies to the new one: %v", got)
		}
		m.failedPodDeleted(next, "b", now)
		if got := m.failedPodBackoff(next, now)["b"]; !got.Equal(now.Add(failedPodBackoffInitial)) {
			t.Errorf("until %v, want the initial delay", got)
		}
	})
	t.Run("a set of the same name with another UID starts afresh", func(t *testing.T) {
		other := set.DeepCopy()
		other.UID = "uid-2"
		if got := m.failedPodBackoff(other, now); got != nil {
			t.Errorf("a new set inherits backoff: %v", got)
		}
	})
	t.Run("garbage collection drops expired entries", func(t *testing.T) {
		m := newMemory()
		m.failedPodDeleted(set, "a", now)
		m.failedPodDeleted(set, "b", now.Add(time.Hour))
		m.collectGarbage(now.Add(2*failedPodBackoffMax + time.Second))
		m.with(set, func(s *setMemory) {
			if _, ok := s.failedPods["a"]; ok {
				t.Error("an expired entry survived")
			}
			if _, ok := s.failedPods["b"]; !ok {
				t.Error("a live entry was dropped")
			}
		})
	})
}

func TestTemplateVerdicts(t *testing.T) {
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	set := &nasv1alpha1.NodeAgentSet{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "agent", UID: "uid-1"}}
	m := newMemory()
	if v := m.templateVerdict(set, "h1"); v.State != planner.TemplateUnchecked {
		t.Fatalf("a new set's verdict is %q, want unchecked", v.State)
	}
	record := func(state planner.TemplateState) time.Duration {
		return m.recordTemplateVerdict(set, "h1", state, "msg", now).RecheckAt.Sub(now)
	}
	if got := record(planner.TemplateRejected); got != templateRejectedRecheck {
		t.Errorf("rejected: recheck in %v, want %v", got, templateRejectedRecheck)
	}
	for i, want := range []time.Duration{2 * time.Second, 4 * time.Second, 8 * time.Second} {
		if got := record(planner.TemplateServiceAccountMissing); got != want {
			t.Errorf("service account missing, answer %d: recheck in %v, want %v", i+1, got, want)
		}
	}
	if got := record(planner.TemplateCheckFailed); got != checkFailedRecheckInitial {
		t.Errorf("a failed check after other answers: recheck in %v, want %v", got, checkFailedRecheckInitial)
	}
	for range 20 {
		record(planner.TemplateCheckFailed)
	}
	if got := record(planner.TemplateCheckFailed); got != checkFailedRecheckMax {
		t.Errorf("failed checks in a row: recheck in %v, want at most %v", got, checkFailedRecheckMax)
	}
	if v := m.templateVerdict(set, "h2"); v.State != planner.TemplateUnchecked {
		t.Errorf("another template's verdict is %q, want unchecked", v.State)
	}
	if got := record(planner.TemplateAccepted); got > 0 {
		t.Errorf("accepted: recheck in %v, want never", got)
	}
	m.forget(client.ObjectKeyFromObject(set))
	if v := m.templateVerdict(set, "h1"); v.State != planner.TemplateUnchecked {
		t.Errorf("a forgotten set's verdict is %q, want unchecked", v.State)
	}
}
