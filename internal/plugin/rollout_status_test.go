package plugin

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
)

func statusSet(mutate func(*nasv1alpha1.NodeAgentSet)) *nasv1alpha1.NodeAgentSet {
	set := &nasv1alpha1.NodeAgentSet{ObjectMeta: metav1.ObjectMeta{Name: "agent", Generation: 2}}
	set.Spec.UpdateStrategy.Type = nasv1alpha1.RollingUpdateStrategyType
	set.Status = nasv1alpha1.NodeAgentSetStatus{ObservedGeneration: 2, DesiredNumberScheduled: 4, UpdatedNumberScheduled: 4, NumberAvailable: 4}
	if mutate != nil {
		mutate(set)
	}
	return set
}

func TestRolloutStatus(t *testing.T) {
	tests := []struct {
		name    string
		set     *nasv1alpha1.NodeAgentSet
		want    string
		done    bool
		wantErr string
	}{
		{name: "done", set: statusSet(nil), want: `node agent set "agent" successfully rolled out` + "\n", done: true},
		{name: "empty strategy type is RollingUpdate", set: statusSet(func(s *nasv1alpha1.NodeAgentSet) { s.Spec.UpdateStrategy.Type = "" }),
			want: `node agent set "agent" successfully rolled out` + "\n", done: true},
		{name: "OnDelete", set: statusSet(func(s *nasv1alpha1.NodeAgentSet) { s.Spec.UpdateStrategy.Type = nasv1alpha1.OnDeleteStrategyType }),
			wantErr: "rollout status is only available for RollingUpdate strategy type"},
		{name: "not observed", set: statusSet(func(s *nasv1alpha1.NodeAgentSet) { s.Generation = 3 }),
			want: "Waiting for node agent set spec update to be observed...\n"},
		{name: "observed generation ahead counts as observed", set: statusSet(func(s *nasv1alpha1.NodeAgentSet) { s.Status.ObservedGeneration = 5 }),
			want: `node agent set "agent" successfully rolled out` + "\n", done: true},
		{name: "complete with unhealthy nodes skipped", set: statusSet(func(s *nasv1alpha1.NodeAgentSet) {
			s.Status.DesiredNumberScheduled, s.Status.UpdatedNumberScheduled, s.Status.NumberAvailable = 100, 97, 97
			s.Status.SkippedNodes = &nasv1alpha1.SkippedNodes{Count: 3, Nodes: []string{"node-010", "node-050", "node-090"}}
			s.Status.Conditions = []metav1.Condition{{Type: nasv1alpha1.ConditionProgressing, Status: metav1.ConditionTrue,
				Reason: nasv1alpha1.ReasonRolloutComplete}}
		}), want: `node agent set "agent" successfully rolled out (3 unhealthy nodes skipped: node-010, node-050, node-090)` + "\n", done: true},
		{name: "one of many skipped nodes named", set: statusSet(func(s *nasv1alpha1.NodeAgentSet) {
			s.Status.SkippedNodes = &nasv1alpha1.SkippedNodes{Count: 7, Nodes: []string{"a", "b", "c", "d", "e"}}
		}), want: `node agent set "agent" successfully rolled out (7 unhealthy nodes skipped: a, b, c, d, e and 2 more)` + "\n", done: true},
		{name: "updating", set: statusSet(func(s *nasv1alpha1.NodeAgentSet) { s.Status.UpdatedNumberScheduled = 1 }),
			want: `Waiting for node agent set "agent" rollout to finish: 1 out of 4 new pods have been updated...` + "\n"},
		{name: "becoming available", set: statusSet(func(s *nasv1alpha1.NodeAgentSet) { s.Status.NumberAvailable = 3 }),
			want: `Waiting for node agent set "agent" rollout to finish: 3 of 4 updated pods are available...` + "\n"},
		{name: "paused", set: statusSet(func(s *nasv1alpha1.NodeAgentSet) {
			s.Spec.UpdateStrategy.RollingUpdate = &nasv1alpha1.RollingUpdateNodeAgentSet{Paused: true}
			s.Status.NumberAvailable = 3
		}), want: `Waiting for node agent set "agent" rollout to finish: 3 of 4 updated pods are available (rollout paused)...` + "\n"},
		{name: "partition of 1 leaves 3 to update", set: statusSet(func(s *nasv1alpha1.NodeAgentSet) {
			s.Spec.UpdateStrategy.RollingUpdate = &nasv1alpha1.RollingUpdateNodeAgentSet{Partition: ptr.To(intstr.FromInt32(1))}
			s.Status.UpdatedNumberScheduled = 2
		}), want: "Waiting for partitioned roll out to finish: 2 out of 3 new pods have been updated...\n"},
		{name: "partition percentage rounds up", set: statusSet(func(s *nasv1alpha1.NodeAgentSet) {
			s.Spec.UpdateStrategy.RollingUpdate = &nasv1alpha1.RollingUpdateNodeAgentSet{Partition: ptr.To(intstr.FromString("30%"))}
			s.Status.UpdatedNumberScheduled = 2
		}), want: "partitioned roll out complete: 2 new pods have been updated...\n", done: true},
		{name: "partition reached but pods unavailable", set: statusSet(func(s *nasv1alpha1.NodeAgentSet) {
			s.Spec.UpdateStrategy.RollingUpdate = &nasv1alpha1.RollingUpdateNodeAgentSet{Partition: ptr.To(intstr.FromInt32(2))}
			s.Status.UpdatedNumberScheduled, s.Status.NumberAvailable = 2, 3
		}), want: `Waiting for node agent set "agent" rollout to finish: 3 of 4 pods are available...` + "\n"},
		{name: "deadline exceeded", set: statusSet(func(s *nasv1alpha1.NodeAgentSet) {
			s.Status.UpdatedNumberScheduled = 2
			s.Status.Conditions = []metav1.Condition{{Type: nasv1alpha1.ConditionProgressing, Status: metav1.ConditionFalse,
				Reason: nasv1alpha1.ReasonProgressDeadlineExceeded, Message: "stuck: n1 (node not ready)"}}
		}), wantErr: `node agent set "agent" exceeded its progress deadline: stuck: n1 (node not ready)`},
		{name: "deadline condition not observed yet", set: statusSet(func(s *nasv1alpha1.NodeAgentSet) {
			s.Generation = 3
			s.Status.Conditions = []metav1.Condition{{Type: nasv1alpha1.ConditionProgressing, Status: metav1.ConditionFalse,
				Reason: nasv1alpha1.ReasonProgressDeadlineExceeded}}
		}), want: "Waiting for node agent set spec update to be observed...\n"},
		{name: "progressing true is not an error", set: statusSet(func(s *nasv1alpha1.NodeAgentSet) {
			s.Status.Conditions = []metav1.Condition{{Type: nasv1alpha1.ConditionProgressing, Status: metav1.ConditionTrue,
				Reason: nasv1alpha1.ReasonRolloutComplete}}
		}), want: `node agent set "agent" successfully rolled out` + "\n", done: true},
		{name: "the controller's verdict, not the counters, says done", set: statusSet(func(s *nasv1alpha1.NodeAgentSet) {
			s.Status.Conditions = []metav1.Condition{{Type: nasv1alpha1.ConditionProgressing, Status: metav1.ConditionTrue,
				Reason: nasv1alpha1.ReasonRollingOut, Message: "3 of 4 eligible nodes run an available pod of revision h"}}
		}), want: `Waiting for node agent set "agent" rollout to finish: 3 of 4 eligible nodes run an available pod of revision h...` + "\n"},
		{name: "a complete verdict ends the watch while a held node is unavailable", set: statusSet(func(s *nasv1alpha1.NodeAgentSet) {
			s.Spec.UpdateStrategy.RollingUpdate = &nasv1alpha1.RollingUpdateNodeAgentSet{Partition: ptr.To(intstr.FromInt32(1))}
			s.Status.UpdatedNumberScheduled, s.Status.NumberAvailable = 3, 3
			s.Status.Conditions = []metav1.Condition{{Type: nasv1alpha1.ConditionProgressing, Status: metav1.ConditionTrue,
				Reason: nasv1alpha1.ReasonRolloutComplete}}
		}), want: "partitioned roll out complete: 3 new pods have been updated...\n", done: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, done, err := rolloutStatus(tt.set)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want || done != tt.done {
				t.Errorf("got (%q, %v), want (%q, %v)", got, done, tt.want, tt.done)
			}
		})
	}
}
