package nodeagentset

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
	"github.com/nodeagentset/nodeagentset/internal/planner"
)

func TestProgressingCondition(t *testing.T) {
	rolling := &nasv1alpha1.NodeAgentSet{Spec: nasv1alpha1.NodeAgentSetSpec{
		UpdateStrategy:          nasv1alpha1.NodeAgentSetUpdateStrategy{Type: nasv1alpha1.RollingUpdateStrategyType},
		ProgressDeadlineSeconds: ptr.To[int32](60),
	}}
	onDelete := rolling.DeepCopy()
	onDelete.Spec.UpdateStrategy.Type = nasv1alpha1.OnDeleteStrategyType
	started := t0.Add(-30 * time.Second)
	stuck := []planner.StuckNode{
		{Node: "a", Reason: "container agent: CrashLoopBackOff"},
		{Node: "b", Reason: "agent pod pending: Unschedulable (0/3 nodes are available)"},
	}
	cases := []struct {
		name        string
		set         *nasv1alpha1.NodeAgentSet
		rollout     planner.Rollout
		hostPort    bool
		now         time.Time
		wantStatus  metav1.ConditionStatus
		wantReason  string
		wantMessage string
	}{
		{
			name: "complete", set: rolling, now: t0.Time,
			rollout:    planner.Rollout{Target: 3, UpdatedAvailable: 3, Complete: true},
			wantStatus: metav1.ConditionTrue, wantReason: nasv1alpha1.ReasonRolloutComplete,
			wantMessage: "3 of 3 eligible nodes run an available pod of revision h2",
		},
		{
			name: "rolling, within the deadline", set: rolling, now: t0.Time,
			rollout:    planner.Rollout{Target: 3, UpdatedAvailable: 1, LastProgress: started, Stuck: stuck},
			wantStatus: metav1.ConditionTrue, wantReason: nasv1alpha1.ReasonRollingOut,
			wantMessage: "1 of 3 eligible nodes run an available pod of revision h2",
		},
		{
			name: "rolling, past the deadline: names the stuck nodes", set: rolling, now: t0.Add(31 * time.Second),
			rollout:    planner.Rollout{Target: 3, UpdatedAvailable: 1, LastProgress: started, Stuck: stuck},
			wantStatus: metav1.ConditionFalse, wantReason: nasv1alpha1.ReasonProgressDeadlineExceeded,
			wantMessage: "no progress since 2026-11-22T05:59:30Z: 1 of 3 eligible nodes run an available pod of revision h2; " +
				"stuck: a (container agent: CrashLoopBackOff), b (agent pod pending: Unschedulable (0/3 nodes are available))",
		},
		{
			name: "paused: no deadline", set: rolling, now: t0.Add(time.Hour),
			rollout:    planner.Rollout{Target: 3, UpdatedAvailable: 1, LastProgress: started, Paused: true},
			wantStatus: metav1.ConditionUnknown, wantReason: nasv1alpha1.ReasonRolloutPaused,
			wantMessage: "1 of 3 eligible nodes run an available pod of revision h2; paused",
		},
		{
			name: "OnDelete: waits for deletions, no deadline", set: onDelete, now: t0.Add(time.Hour),
			rollout:    planner.Rollout{Target: 3, UpdatedAvailable: 1, LastProgress: started},
			wantStatus: metav1.ConditionTrue, wantReason: nasv1alpha1.ReasonWaitingForDeletion,
			wantMessage: "1 of 3 eligible nodes run an available pod of revision h2; strategy OnDelete: old pods are replaced when deleted",
		},
		{
			name: "partition and host ports are explained", set: rolling, now: t0.Time, hostPort: true,
			rollout:    planner.Rollout{Target: 3, UpdatedAvailable: 1, LastProgress: started, Partition: 2, FirstPartitionedNode: "node-3"},
			wantStatus: metav1.ConditionTrue, wantReason: nasv1alpha1.ReasonRollingOut,
			wantMessage: "1 of 3 eligible nodes run an available pod of revision h2; partition: 2 nodes, from node-3 on by name, " +
				"keep their pods; the template binds host ports, so maxSurge is applied delete-first",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := progressingCondition(statusInput{
				set: tc.set, hash: "h2", now: metav1.NewTime(tc.now),
				plan: planner.Plan{Rollout: tc.rollout, SurgeBlockedByHostPort: tc.hostPort},
			})
			if got.Status != tc.wantStatus || got.Reason != tc.wantReason || got.Message != tc.wantMessage {
				t.Errorf("got %s/%s %q\nwant %s/%s %q", got.Status, got.Reason, got.Message, tc.wantStatus, tc.wantReason, tc.wantMessage)
			}
		})
	}
}

func TestRequeueAtProgressDeadline(t *testing.T) {
	set := &nasv1alpha1.NodeAgentSet{Spec: nasv1alpha1.NodeAgentSetSpec{ProgressDeadlineSeconds: ptr.To[int32](60)}}
	rollout := planner.Rollout{Target: 2, LastProgress: t0.Time}
	if got, want := untilProgressDeadline(set, rollout, t0.Add(20*time.Second)), 41*time.Second; got != want {
		t.Errorf("untilProgressDeadline = %v, want %v (deadline + 1s)", got, want)
	}
	rollout.Complete = true
	if got := untilProgressDeadline(set, rollout, t0.Add(20*time.Second)); got != 0 {
		t.Errorf("untilProgressDeadline for a complete rollout = %v, want 0", got)
	}
}

func TestRenderStuckCapsTheList(t *testing.T) {
	names := []string{"a", "b", "c", "d", "e", "f", "g"}
	stuck := make([]planner.StuckNode, 0, len(names))
	for _, n := range names {
		stuck = append(stuck, planner.StuckNode{Node: n, Reason: "r"})
	}
	if got, want := renderStuck(stuck), "a (r), b (r), c (r), d (r), e (r), and 2 more"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
