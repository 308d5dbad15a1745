package nodeagentset

import (
	"errors"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
	"github.com/nodeagentset/nodeagentset/internal/planner"
)

var t0 = metav1.NewTime(time.Date(2026, 11, 22, 6, 0, 0, 0, time.UTC))

func excludedByTaint(detail string) planner.NodeState {
	return planner.NodeState{Placement: planner.Placement{
		Exclusion: &planner.Exclusion{Kind: planner.ExcludedByTaint, Detail: detail},
	}}
}

func TestAvailableCondition(t *testing.T) {
	notReady := &corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodRunning}, Spec: corev1.PodSpec{NodeName: "a"}}
	cases := []struct {
		name        string
		counters    planner.Counters
		nodes       map[string]planner.NodeState
		template    *templateVerdict
		wantStatus  metav1.ConditionStatus
		wantReason  string
		wantMessage string
	}{
		{
			name:        "all available",
			counters:    planner.Counters{DesiredNumberScheduled: 3, NumberAvailable: 3},
			wantStatus:  metav1.ConditionTrue,
			wantReason:  nasv1alpha1.ReasonAllNodesAvailable,
			wantMessage: "All 3 eligible nodes run an available agent pod",
		},
		{
			name:        "no eligible node is still available",
			counters:    planner.Counters{},
			wantStatus:  metav1.ConditionTrue,
			wantReason:  nasv1alpha1.ReasonAllNodesAvailable,
			wantMessage: "All 0 eligible nodes run an available agent pod",
		},
		{
			name:     "excluded nodes are named with their cause",
			counters: planner.Counters{DesiredNumberScheduled: 1, NumberAvailable: 1},
			nodes: map[string]planner.NodeState{
				"gpu-1": excludedByTaint("taint dedicated=gpu:NoSchedule"),
				"gpu-2": excludedByTaint("taint dedicated=gpu:NoSchedule"),
				"cp":    excludedByTaint("taint node-role.kubernetes.io/control-plane:NoSchedule"),
			},
			wantStatus: metav1.ConditionTrue,
			wantReason: nasv1alpha1.ReasonAllNodesAvailable,
			wantMessage: "All 1 eligible nodes run an available agent pod; not eligible: " +
				"2 nodes: taint dedicated=gpu:NoSchedule not tolerated, 1 node: taint node-role.kubernetes.io/control-plane:NoSchedule not tolerated",
		},
		{
			name:     "unavailable nodes are counted by cause",
			counters: planner.Counters{DesiredNumberScheduled: 4, NumberAvailable: 1},
			nodes: map[string]planner.NodeState{
				"a": {Placement: planner.Placement{ShouldRun: true, ShouldContinueRunning: true}, Pod: notReady},
				"b": {Placement: planner.Placement{ShouldRun: true, ShouldContinueRunning: true}},
				"c": {Placement: planner.Placement{ShouldRun: true, ShouldContinueRunning: true}},
			},
			wantStatus:  metav1.ConditionFalse,
			wantReason:  nasv1alpha1.ReasonNodesUnavailable,
			wantMessage: "3 of 4 eligible nodes have no available agent pod: 2 nodes: no agent pod yet, 1 node: agent pod not ready",
		},
		{
			name:        "a rejected template is the reason",
			counters:    planner.Counters{DesiredNumberScheduled: 2},
			template:    &templateVerdict{message: "pods \"x\" is forbidden: violates PodSecurity"},
			wantStatus:  metav1.ConditionFalse,
			wantReason:  nasv1alpha1.ReasonPodTemplateRejected,
			wantMessage: "2 of 2 eligible nodes have no available agent pod: the API server rejects the pod template",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := availableCondition(statusInput{
				set:      &nasv1alpha1.NodeAgentSet{},
				plan:     planner.Plan{Status: tc.counters, Nodes: tc.nodes},
				template: tc.template,
			})
			if got.Status != tc.wantStatus || got.Reason != tc.wantReason || got.Message != tc.wantMessage {
				t.Errorf("got %s/%s %q\nwant %s/%s %q", got.Status, got.Reason, got.Message, tc.wantStatus, tc.wantReason, tc.wantMessage)
			}
		})
	}
}

func TestRenderCountsCapsTheList(t *testing.T) {
	got := renderCounts(map[string]int{"a": 5, "b": 4, "c": 3, "d": 2, "e": 1})
	want := "5 nodes: a, 4 nodes: b, 3 nodes: c, 3 nodes: other causes"
	if got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestComputeStatus(t *testing.T) {
	foreign := metav1.Condition{Type: "StatusUpdate", Status: metav1.ConditionTrue, Reason: "E2E", LastTransitionTime: t0}
	set := &nasv1alpha1.NodeAgentSet{
		ObjectMeta: metav1.ObjectMeta{Generation: 4},
		Status: nasv1alpha1.NodeAgentSetStatus{
			ObservedGeneration: 3,
			CollisionCount:     new(int32),
			Conditions:         []metav1.Condition{foreign},
		},
	}
	plan := planner.Plan{Status: planner.Counters{
		DesiredNumberScheduled: 2, CurrentNumberScheduled: 2, NumberReady: 2, NumberAvailable: 2, UpdatedNumberScheduled: 2,
	}}

	t.Run("a failed pass keeps observedGeneration", func(t *testing.T) {
		st := computeStatus(statusInput{set: set, plan: plan, synced: false, now: t0})
		if st.ObservedGeneration != 3 {
			t.Errorf("observedGeneration = %d, want 3", st.ObservedGeneration)
		}
		if st.DesiredNumberScheduled != 2 || st.NumberAvailable != 2 {
			t.Errorf("counters not copied: %+v", st)
		}
	})
	t.Run("a synced pass advances it and keeps foreign conditions and collisionCount", func(t *testing.T) {
		st := computeStatus(statusInput{set: set, plan: plan, synced: true, now: t0})
		if st.ObservedGeneration != 4 {
			t.Errorf("observedGeneration = %d, want 4", st.ObservedGeneration)
		}
		if meta.FindStatusCondition(st.Conditions, "StatusUpdate") == nil {
			t.Error("foreign condition dropped")
		}
		if st.CollisionCount == nil {
			t.Error("collisionCount dropped")
		}
		if c := meta.FindStatusCondition(st.Conditions, nasv1alpha1.ConditionAvailable); c == nil || c.LastTransitionTime != t0 {
			t.Errorf("Available condition = %+v", c)
		}
		if meta.FindStatusCondition(st.Conditions, nasv1alpha1.ConditionPodTemplateValid) != nil {
			t.Error("PodTemplateValid set without a verdict")
		}
	})
	t.Run("an unchanged condition keeps its transition time, so the status does not change", func(t *testing.T) {
		first := computeStatus(statusInput{set: set, plan: plan, synced: true, now: t0})
		again := set.DeepCopy()
		again.Status = first
		second := computeStatus(statusInput{set: again, plan: plan, synced: true, now: metav1.NewTime(t0.Add(time.Hour))})
		if statusChanged(&first, &second) {
			t.Errorf("status changed on a pass that saw the same world:\n%+v\n%+v", first, second)
		}
	})
	t.Run("a verdict sets PodTemplateValid", func(t *testing.T) {
		st := computeStatus(statusInput{set: set, plan: plan, synced: true, now: t0, template: &templateVerdict{message: "bad"}})
		c := meta.FindStatusCondition(st.Conditions, nasv1alpha1.ConditionPodTemplateValid)
		if c == nil || c.Status != metav1.ConditionFalse || c.Message != "The API server rejects the pod template: bad" {
			t.Errorf("PodTemplateValid = %+v", c)
		}
	})
}

func TestStatusApplyConfigurationOwnsOnlyOurFields(t *testing.T) {
	set := &nasv1alpha1.NodeAgentSet{ObjectMeta: metav1.ObjectMeta{Name: "agent", Namespace: "ns"}}
	st := &nasv1alpha1.NodeAgentSetStatus{
		DesiredNumberScheduled: 3,
		CollisionCount:         new(int32),
		Conditions: []metav1.Condition{
			{Type: nasv1alpha1.ConditionAvailable, Status: metav1.ConditionTrue, Reason: "R", LastTransitionTime: t0},
			{Type: "SomeoneElses", Status: metav1.ConditionTrue, Reason: "R", LastTransitionTime: t0},
		},
	}
	ac, err := statusApplyConfiguration(set, st)
	if err != nil {
		t.Fatal(err)
	}
	u := ac.(interface{ UnstructuredContent() map[string]any }).UnstructuredContent()
	status := u["status"].(map[string]any)
	// collisionCount is ours: the controller raises it on a hash collision and must keep it.
	if _, ok := status["collisionCount"]; !ok {
		t.Error("collisionCount dropped from the apply: server-side apply would then remove it")
	}
	conds := status["conditions"].([]any)
	if len(conds) != 1 || conds[0].(map[string]any)["type"] != nasv1alpha1.ConditionAvailable {
		t.Errorf("conditions = %v, want only Available", conds)
	}
	if u["kind"] != "NodeAgentSet" || u["apiVersion"] != nasv1alpha1.GroupVersion.String() {
		t.Errorf("type meta = %v %v", u["apiVersion"], u["kind"])
	}
}

func TestIsTemplateRejection(t *testing.T) {
	gr := schema.GroupResource{Resource: "pods"}
	cases := []struct {
		name string
		err  error
		want bool
	}{
		{"invalid", apierrors.NewInvalid(schema.GroupKind{Kind: "Pod"}, "x", nil), true},
		{"pod security", apierrors.NewForbidden(gr, "x", errors.New("violates PodSecurity \"restricted:latest\"")), true},
		{"quota", apierrors.NewForbidden(gr, "x", errors.New("exceeded quota: pods, requested: pods=1")), false},
		{"timeout", apierrors.NewServerTimeout(gr, "create", 1), false},
		{"conflict", apierrors.NewConflict(gr, "x", errors.New("boom")), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := isTemplateRejection(tc.err); got != tc.want {
				t.Errorf("isTemplateRejection(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}

func TestRequeueAfter(t *testing.T) {
	rejected := &templateVerdict{}
	accepted := &templateVerdict{accepted: true}
	cases := []struct {
		name    string
		plan    time.Duration
		verdict *templateVerdict
		want    time.Duration
	}{
		{"nothing pending", 0, nil, 0},
		{"plan decides", 3 * time.Second, accepted, 3 * time.Second},
		{"rejected template rechecks", 0, rejected, templateRecheckInterval},
		{"an earlier plan requeue wins", time.Second, rejected, time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			plan := planner.Plan{RequeueAfter: tc.plan, Rollout: planner.Rollout{Complete: true}}
			if got := requeueAfter(&nasv1alpha1.NodeAgentSet{}, plan, tc.verdict, t0.Time); got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}
