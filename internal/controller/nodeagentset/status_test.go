package nodeagentset

import (
	"errors"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
	"github.com/nodeagentset/nodeagentset/internal/planner"
)

var t0 = metav1.NewTime(time.Date(2026, 11, 22, 6, 0, 0, 0, time.UTC))

// The conditions are the planner's renderings (their wording is pinned by the planner's golden
// files); the controller adds its own template verdict while the planner's input lacks it.
func TestConditionsAreThePlannersRendering(t *testing.T) {
	eligible := planner.Placement{ShouldRun: true, ShouldContinueRunning: true}
	plan := planner.Plan{
		Status: planner.Counters{DesiredNumberScheduled: 2},
		Nodes: map[string]planner.NodeState{
			"a": {Placement: eligible, Reason: planner.NodeReason{Code: planner.ReasonNoPod}},
			"b": {Placement: eligible, Reason: planner.NodeReason{Code: planner.ReasonNodeNotReady}},
		},
		Rollout: planner.Rollout{Target: 2, Phase: planner.RolloutProgressing},
	}
	in := statusInput{set: &nasv1alpha1.NodeAgentSet{}, plan: plan, hash: "h2", now: t0}
	if got, want := availableCondition(in), planner.AvailableCondition(plan); got != want {
		t.Errorf("Available = %+v, want the planner's %+v", got, want)
	}
	if got, want := progressingCondition(in), planner.ProgressingCondition(plan, "h2"); got != want {
		t.Errorf("Progressing = %+v, want the planner's %+v", got, want)
	}
	in.template = &templateVerdict{message: "pods \"x\" is forbidden: violates PodSecurity"}
	if got := availableCondition(in); got.Status != metav1.ConditionFalse || got.Reason != nasv1alpha1.ReasonPodTemplateRejected {
		t.Errorf("Available with a rejected template = %s/%s", got.Status, got.Reason)
	}
	st := computeStatus(in)
	c := meta.FindStatusCondition(st.Conditions, nasv1alpha1.ConditionPodTemplateValid)
	if c == nil || c.Status != metav1.ConditionFalse || !strings.Contains(c.Message, in.template.message) {
		t.Errorf("PodTemplateValid = %+v, want False with the API server's words", c)
	}
	in.template = nil
	if meta.FindStatusCondition(computeStatus(in).Conditions, nasv1alpha1.ConditionPodTemplateValid) != nil {
		t.Error("PodTemplateValid set without a verdict")
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
