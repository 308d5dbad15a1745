package nodeagentset

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
)

func TestStatusWritesWait(t *testing.T) {
	key := types.NamespacedName{Namespace: "ns", Name: "agent"}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	moving := func(ready int32) *nasv1alpha1.NodeAgentSetStatus {
		return &nasv1alpha1.NodeAgentSetStatus{
			ObservedGeneration: 2, DesiredNumberScheduled: 10, CurrentNumberScheduled: 10, NumberReady: ready,
			NumberAvailable: ready, NumberUnavailable: 10 - ready, UpdatedNumberScheduled: 10, UpdateRevision: "r2",
			Conditions: []metav1.Condition{{Type: nasv1alpha1.ConditionProgressing, Status: metav1.ConditionTrue,
				Reason: "Updating", Message: "some nodes"}},
		}
	}
	for _, tc := range []struct {
		name      string
		wrote     bool // a write 300ms before now
		busy      bool // this pass created or deleted pods
		old, next *nasv1alpha1.NodeAgentSetStatus
		want      time.Duration
	}{
		{"first write of a set goes at once", false, false, moving(3), moving(4), 0},
		{"counters alone wait out the interval", true, false, moving(3), moving(4), statusWriteInterval - 300*time.Millisecond},
		{"condition wording alone waits too", true, false, moving(3), func() *nasv1alpha1.NodeAgentSetStatus {
			s := moving(4)
			s.Conditions[0].Message = "other nodes"
			return s
		}(), statusWriteInterval - 300*time.Millisecond},
		{"a settled status goes at once", true, false, moving(9), moving(10), 0},
		{"a pass that wrote pods waits longer", true, true, moving(3), moving(4), 9700 * time.Millisecond},
		{"every node Ready and available is no milestone (a rollout step)", true, true, func() *nasv1alpha1.NodeAgentSetStatus {
			s := moving(3)
			s.UpdatedNumberScheduled = 5
			return s
		}(), func() *nasv1alpha1.NodeAgentSetStatus {
			s := moving(10)
			s.UpdatedNumberScheduled = 5
			return s
		}(), 9700 * time.Millisecond},
		{"every node Ready, some waiting out minReadySeconds, is a milestone", true, true, moving(3), func() *nasv1alpha1.NodeAgentSetStatus {
			s := moving(4)
			s.NumberReady = 10
			return s
		}(), 0},
		{"every node having a pod again is no milestone (a rollout step)", true, true, func() *nasv1alpha1.NodeAgentSetStatus {
			s := moving(3)
			s.CurrentNumberScheduled = 9
			return s
		}(), moving(4), 9700 * time.Millisecond},
		{"every node updated is a milestone", true, true, func() *nasv1alpha1.NodeAgentSetStatus {
			s := moving(3)
			s.UpdatedNumberScheduled = 9
			return s
		}(), moving(4), 0},
		{"no misscheduled pod left is a milestone", true, false, func() *nasv1alpha1.NodeAgentSetStatus {
			s := moving(3)
			s.NumberMisscheduled = 1
			return s
		}(), moving(3), 0},
		{"a counter that stays at desired is no milestone", true, false, moving(3), func() *nasv1alpha1.NodeAgentSetStatus {
			s := moving(3)
			s.NumberReady = 4
			return s
		}(), statusWriteInterval - 300*time.Millisecond},
		{"a pass that wrote pods still writes a settled status", true, true, moving(9), moving(10), 0},
		{"a pass that wrote pods still writes a new generation", true, true, moving(3), func() *nasv1alpha1.NodeAgentSetStatus {
			s := moving(4)
			s.ObservedGeneration = 3
			return s
		}(), 0},
		{"a new generation goes at once", true, false, moving(3), func() *nasv1alpha1.NodeAgentSetStatus {
			s := moving(4)
			s.ObservedGeneration = 3
			return s
		}(), 0},
		{"a new revision goes at once", true, false, moving(3), func() *nasv1alpha1.NodeAgentSetStatus {
			s := moving(3)
			s.CurrentRevision = "r2"
			return s
		}(), 0},
		{"a collision count goes at once", true, false, moving(3), func() *nasv1alpha1.NodeAgentSetStatus {
			s := moving(3)
			s.CollisionCount = ptr.To[int32](1)
			return s
		}(), 0},
		{"a condition's reason goes at once", true, false, moving(3), func() *nasv1alpha1.NodeAgentSetStatus {
			s := moving(3)
			s.Conditions[0].Reason = "ProgressDeadlineExceeded"
			return s
		}(), 0},
		{"a condition's status goes at once", true, false, moving(3), func() *nasv1alpha1.NodeAgentSetStatus {
			s := moving(3)
			s.Conditions[0].Status = metav1.ConditionFalse
			return s
		}(), 0},
		{"Available turning False for want of available pods is a counter change", true, false,
			withAvailable(moving(3), metav1.ConditionTrue, nasv1alpha1.ReasonAllNodesAvailable),
			withAvailable(moving(2), metav1.ConditionFalse, nasv1alpha1.ReasonNodesUnavailable),
			statusWriteInterval - 300*time.Millisecond},
		{"Available turning False for a rejected template goes at once", true, false,
			withAvailable(moving(3), metav1.ConditionFalse, nasv1alpha1.ReasonNodesUnavailable),
			withAvailable(moving(3), metav1.ConditionFalse, nasv1alpha1.ReasonPodTemplateRejected), 0},
		{"a new condition goes at once", true, false, moving(3), func() *nasv1alpha1.NodeAgentSetStatus {
			s := moving(3)
			s.Conditions = append(s.Conditions, metav1.Condition{Type: nasv1alpha1.ConditionAvailable})
			return s
		}(), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newStatusWrites()
			now := t0.Add(time.Second)
			if tc.wrote {
				w.wrote(key, now.Add(-300*time.Millisecond))
			}
			if tc.busy {
				w.podsWritten(key, now)
			}
			if got := w.wait(key, tc.old, tc.next, now); got != tc.want {
				t.Errorf("wait() = %v, want %v", got, tc.want)
			}
		})
	}

	t.Run("the interval passes", func(t *testing.T) {
		w := newStatusWrites()
		w.wrote(key, t0)
		if got := w.wait(key, moving(3), moving(4), t0.Add(statusWriteInterval)); got != 0 {
			t.Errorf("wait() = %v after the interval, want 0", got)
		}
	})
	t.Run("a quiet pass of a set in motion waits the longer interval", func(t *testing.T) {
		w := newStatusWrites()
		w.podsWritten(key, t0)
		w.wrote(key, t0)
		now := t0.Add(3 * time.Second)
		if got := w.wait(key, moving(3), moving(4), now); got != busyStatusWriteInterval-3*time.Second {
			t.Errorf("wait() = %v, want %v", got, busyStatusWriteInterval-3*time.Second)
		}
	})
	t.Run("motion ends busyStatusWriteInterval after the last pod write", func(t *testing.T) {
		w := newStatusWrites()
		w.podsWritten(key, t0)
		w.wrote(key, t0.Add(busyStatusWriteInterval))
		now := t0.Add(busyStatusWriteInterval + time.Second)
		if got := w.wait(key, moving(3), moving(4), now); got != statusWriteInterval-time.Second {
			t.Errorf("wait() = %v, want %v", got, statusWriteInterval-time.Second)
		}
	})
	t.Run("a forgotten set starts afresh", func(t *testing.T) {
		w := newStatusWrites()
		w.wrote(key, t0)
		w.podsWritten(key, t0)
		w.forget(key)
		if got := w.wait(key, moving(3), moving(4), t0); got != 0 {
			t.Errorf("wait() = %v after forget, want 0", got)
		}
	})
}

// withAvailable adds an Available condition to s.
func withAvailable(s *nasv1alpha1.NodeAgentSetStatus, status metav1.ConditionStatus, reason string) *nasv1alpha1.NodeAgentSetStatus {
	s.Conditions = append(s.Conditions, metav1.Condition{Type: nasv1alpha1.ConditionAvailable, Status: status, Reason: reason})
	return s
}
