package plugin

import (
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
	"github.com/nodeagentset/nodeagentset/internal/planner"
)

func canarySet(phase nasv1alpha1.CanaryPhase) *nasv1alpha1.NodeAgentSet {
	return statusSet(func(s *nasv1alpha1.NodeAgentSet) {
		s.Status.UpdateRevision = "h2"
		s.Status.Canary = &nasv1alpha1.CanaryStatus{Revision: "h2", Phase: phase}
	})
}

func TestCanaryDecision(t *testing.T) {
	now := time.Date(2026, 12, 2, 20, 0, 0, 0, time.UTC)
	byAction := map[string]canaryCommand{}
	for _, cc := range canaryCommands {
		byAction[cc.action] = cc
	}
	tests := []struct {
		action  string
		set     *nasv1alpha1.NodeAgentSet
		want    string
		wantErr string
	}{
		{action: "promote", set: canarySet(nasv1alpha1.CanaryWaitingForPromotion), want: "promote:h2:2026-12-02T20:00:00Z"},
		{action: "promote", set: canarySet(nasv1alpha1.CanaryFailed), want: "promote:h2:2026-12-02T20:00:00Z"},
		{action: "promote", set: canarySet(nasv1alpha1.CanarySucceeded), wantErr: "is Succeeded: nothing to promote"},
		{action: "abort", set: canarySet(nasv1alpha1.CanaryWatching), want: "abort:h2:2026-12-02T20:00:00Z"},
		{action: "abort", set: canarySet(nasv1alpha1.CanaryAborted), wantErr: "is Aborted: nothing to abort"},
		{action: "retry", set: canarySet(nasv1alpha1.CanaryFailed), want: "retry:h2:2026-12-02T20:00:00Z"},
		{action: "retry", set: canarySet(nasv1alpha1.CanaryWatching), wantErr: "is Watching: nothing to retry"},
		{action: "promote", set: statusSet(nil), wantErr: "has no canary"},
		{action: "promote", set: func() *nasv1alpha1.NodeAgentSet {
			s := canarySet(nasv1alpha1.CanaryWatching)
			s.Status.UpdateRevision = "h3"
			return s
		}(), wantErr: "not the current revision's yet"},
	}
	for _, tc := range tests {
		t.Run(tc.action+" "+tc.want+tc.wantErr, func(t *testing.T) {
			got, err := canaryDecision(tc.set, byAction[tc.action], now)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestRolloutStatusDuringACanary(t *testing.T) {
	withProgressing := func(phase nasv1alpha1.CanaryPhase, status metav1.ConditionStatus, reason, message string) *nasv1alpha1.NodeAgentSet {
		s := canarySet(phase)
		s.Status.Conditions = []metav1.Condition{{Type: nasv1alpha1.ConditionProgressing, Status: status, Reason: reason, Message: message}}
		return s
	}
	msg, done, err := rolloutStatus(withProgressing(nasv1alpha1.CanaryWatching, metav1.ConditionTrue, nasv1alpha1.ReasonCanaryInProgress, "watching"))
	if err != nil || done || msg != `Waiting for node agent set "agent" canary (Watching): watching...`+"\n" {
		t.Fatalf("watching: %q %v %v", msg, done, err)
	}
	_, done, err = rolloutStatus(withProgressing(nasv1alpha1.CanaryFailed, metav1.ConditionFalse, nasv1alpha1.ReasonCanaryFailed, "3 restarts"))
	if err == nil || done || err.Error() != `node agent set "agent" canary failed: 3 restarts` {
		t.Fatalf("failed: %v %v", done, err)
	}
	_, _, err = rolloutStatus(withProgressing(nasv1alpha1.CanaryAborted, metav1.ConditionFalse, nasv1alpha1.ReasonCanaryAborted, "aborted by a person"))
	if err == nil || !strings.Contains(err.Error(), "canary aborted") {
		t.Fatalf("aborted: %v", err)
	}
}

// A node outside a canary that holds the fleet is explained with the canary's phase.
func TestExplainNodeHeldByACanary(t *testing.T) {
	old := testSet(func(s *corev1.PodSpec) { s.Containers[0].Image = "agent:1" })
	set := testSet()
	history := []*appsv1.ControllerRevision{revisionOf(t, old, 1), revisionOf(t, set, 2)}
	oldHash, curHash := history[0].Labels[nasv1alpha1.ControllerRevisionHashLabel], history[1].Labels[nasv1alpha1.ControllerRevisionHashLabel]
	set.Spec.UpdateStrategy.RollingUpdate = &nasv1alpha1.RollingUpdateNodeAgentSet{Canary: &nasv1alpha1.CanaryStrategy{}}
	set.Status.Canary = &nasv1alpha1.CanaryStatus{Revision: curHash, StableRevision: oldHash, Phase: nasv1alpha1.CanaryWatching,
		Nodes: []string{"a"}, WatchStartedAt: &metav1.Time{Time: now}, StartedAt: &metav1.Time{Time: now}}
	s := newSnapshot(set, history, []*corev1.Node{node("a"), node("b")},
		[]*corev1.Pod{pod(set, "pa", "a", curHash), pod(old, "pb", "b", oldHash)}, now)
	got := strings.Join(s.explain(s.reportFor("b"), nil), "\n")
	if !strings.Contains(got, "The rollout is held at its canary (phase Watching)") {
		t.Errorf("why b =\n%s", got)
	}
	// Before the controller wrote a verdict, the plugin plans the canary's start as the controller
	// does, from the revisions that exist.
	set.Status.Canary = nil
	s = newSnapshot(set, history, []*corev1.Node{node("a"), node("b")},
		[]*corev1.Pod{pod(set, "pa", "a", curHash), pod(old, "pb", "b", oldHash)}, now)
	if got := s.plan.Nodes["b"].Reason.Code; got != planner.ReasonWaitingForCanary {
		t.Errorf("b: %s, want %s", got, planner.ReasonWaitingForCanary)
	}
}
