package nodeagentset

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
	"github.com/nodeagentset/nodeagentset/internal/planner"
)

var t0 = metav1.NewTime(time.Date(2026, 11, 22, 6, 0, 0, 0, time.UTC))

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
	in.plan.Template = planner.TemplateVerdict{State: planner.TemplateRejected, Message: "pods \"x\" is forbidden: violates PodSecurity"}
	if got := availableCondition(in); got.Status != metav1.ConditionFalse || got.Reason != nasv1alpha1.ReasonPodTemplateRejected {
		t.Errorf("Available with a rejected template = %s/%s", got.Status, got.Reason)
	}
	st := computeStatus(in)
	c := meta.FindStatusCondition(st.Conditions, nasv1alpha1.ConditionPodTemplateValid)
	if c == nil || c.Status != metav1.ConditionFalse || !strings.Contains(c.Message, in.plan.Template.Message) {
		t.Errorf("PodTemplateValid = %+v, want False with the API server's words", c)
	}
	in.plan.Template = planner.TemplateVerdict{}
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
		if !apiequality.Semantic.DeepEqual(first, second) {
			t.Errorf("status changed on a pass that saw the same world:\n%+v\n%+v", first, second)
		}
	})
	t.Run("the plan's verdict sets PodTemplateValid", func(t *testing.T) {
		for _, tc := range []struct {
			verdict planner.TemplateVerdict
			status  metav1.ConditionStatus
			reason  string
			message string
		}{
			{planner.TemplateVerdict{State: planner.TemplateAccepted}, metav1.ConditionTrue, nasv1alpha1.ReasonPodTemplateAccepted,
				"The API server accepts the pod template (server-side dry-run)"},
			{planner.TemplateVerdict{State: planner.TemplateRejected, Message: "bad"}, metav1.ConditionFalse,
				nasv1alpha1.ReasonPodTemplateRejected, "The API server rejects the pod template: bad"},
			{planner.TemplateVerdict{State: planner.TemplateServiceAccountMissing, Message: "no account"}, metav1.ConditionFalse,
				nasv1alpha1.ReasonServiceAccountMissing, "The pod's ServiceAccount does not exist (yet); pods are created once it does: no account"},
			{planner.TemplateVerdict{State: planner.TemplateCheckFailed, Message: "timeout"}, metav1.ConditionUnknown,
				nasv1alpha1.ReasonPodTemplateCheckFailed, "The pod template could not be checked; retrying: timeout"},
		} {
			p := plan
			p.Template = tc.verdict
			st := computeStatus(statusInput{set: set, plan: p, synced: true, now: t0})
			c := meta.FindStatusCondition(st.Conditions, nasv1alpha1.ConditionPodTemplateValid)
			if c == nil || c.Status != tc.status || c.Reason != tc.reason || c.Message != tc.message {
				t.Errorf("%s: PodTemplateValid = %+v", tc.verdict.State, c)
			}
		}
	})
}

func TestStatusApplyPatchOwnsOnlyOurFields(t *testing.T) {
	set := &nasv1alpha1.NodeAgentSet{ObjectMeta: metav1.ObjectMeta{Name: "agent", Namespace: "ns", ResourceVersion: "42"}}
	st := &nasv1alpha1.NodeAgentSetStatus{
		DesiredNumberScheduled: 3,
		CollisionCount:         new(int32),
		Conditions: []metav1.Condition{
			{Type: nasv1alpha1.ConditionAvailable, Status: metav1.ConditionTrue, Reason: "R", LastTransitionTime: t0},
			{Type: "SomeoneElses", Status: metav1.ConditionTrue, Reason: "R", LastTransitionTime: t0},
		},
	}
	data, err := statusApplyPatch(set, st)
	if err != nil {
		t.Fatal(err)
	}
	var u map[string]any
	if err := json.Unmarshal(data, &u); err != nil {
		t.Fatal(err)
	}
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
	// The write is conditional on the version the pass read: a pass planned on a stale set is refused.
	if rv := u["metadata"].(map[string]any)["resourceVersion"]; rv != "42" {
		t.Errorf("resourceVersion = %v, want the set's 42", rv)
	}
	if _, ok := u["spec"]; ok {
		t.Error("the status apply carries a spec")
	}
}

func TestStatusWait(t *testing.T) {
	set := &nasv1alpha1.NodeAgentSet{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "agent", UID: "uid-1"}}
	moving := func(ready int32) *nasv1alpha1.NodeAgentSetStatus {
		return &nasv1alpha1.NodeAgentSetStatus{
			ObservedGeneration: 2, DesiredNumberScheduled: 10, CurrentNumberScheduled: 10, NumberReady: ready,
			NumberAvailable: ready, NumberUnavailable: 10 - ready, UpdatedNumberScheduled: 10, UpdateRevision: "r2",
			Conditions: []metav1.Condition{{Type: nasv1alpha1.ConditionProgressing, Status: metav1.ConditionTrue,
				Reason: "Updating", Message: "some nodes"}},
		}
	}
	with := func(s *nasv1alpha1.NodeAgentSetStatus, f func(*nasv1alpha1.NodeAgentSetStatus)) *nasv1alpha1.NodeAgentSetStatus {
		f(s)
		return s
	}
	now := t0.Add(time.Second)
	const lastWrite = 300 * time.Millisecond // before now.
	for _, tc := range []struct {
		name      string
		wrote     bool // the set's status was written lastWrite before now.
		inMotion  bool
		old, next *nasv1alpha1.NodeAgentSetStatus
		why       string
		wait      time.Duration
	}{
		{"nothing changed: nothing to write", true, true, moving(3), moving(3), "", 0},
		{"the first write of a set goes at once", false, true, moving(3), moving(4), writeFirst, 0},
		{"counters of a set in motion wait for the world to be quiet", true, true, moving(3), moving(4), writeQuiet, statusQuietPeriod},
		{"condition wording alone waits too", true, true, moving(3), with(moving(4), func(s *nasv1alpha1.NodeAgentSetStatus) {
			s.Conditions[0].Message = "other nodes"
		}), writeQuiet, statusQuietPeriod},
		{"counters of a set with nothing left to do go at once", true, false, moving(3), moving(4), writeAtRest, 0},
		{"a settled status goes at once", true, true, moving(9), moving(10), writeSettled, 0},
		{"every node Ready and available is no milestone (a rollout step)", true, true,
			with(moving(3), func(s *nasv1alpha1.NodeAgentSetStatus) { s.UpdatedNumberScheduled = 5 }),
			with(moving(10), func(s *nasv1alpha1.NodeAgentSetStatus) { s.UpdatedNumberScheduled = 5 }), writeQuiet, statusQuietPeriod},
		{"every node Ready, some waiting out minReadySeconds, is a milestone", true, true, moving(3),
			with(moving(4), func(s *nasv1alpha1.NodeAgentSetStatus) { s.NumberReady = 10 }), writeMilestone, 0},
		{"every node having a pod again is no milestone (a rollout step)", true, true,
			with(moving(3), func(s *nasv1alpha1.NodeAgentSetStatus) { s.CurrentNumberScheduled = 9 }), moving(4), writeQuiet, statusQuietPeriod},
		{"every node updated is a milestone", true, true,
			with(moving(3), func(s *nasv1alpha1.NodeAgentSetStatus) { s.UpdatedNumberScheduled = 9 }), moving(4), writeMilestone, 0},
		{"no misscheduled pod left is a milestone", true, true,
			with(moving(3), func(s *nasv1alpha1.NodeAgentSetStatus) { s.NumberMisscheduled = 1 }), moving(3), writeMilestone, 0},
		{"a new generation goes at once", true, true, moving(3),
			with(moving(4), func(s *nasv1alpha1.NodeAgentSetStatus) { s.ObservedGeneration = 3 }), writeChanged, 0},
		{"a new revision goes at once", true, true, moving(3),
			with(moving(3), func(s *nasv1alpha1.NodeAgentSetStatus) { s.CurrentRevision = "r2" }), writeChanged, 0},
		{"a collision count goes at once", true, true, moving(3),
			with(moving(3), func(s *nasv1alpha1.NodeAgentSetStatus) { s.CollisionCount = ptr.To[int32](1) }), writeChanged, 0},
		{"a condition turning goes at once", true, true, moving(3),
			with(moving(3), func(s *nasv1alpha1.NodeAgentSetStatus) { s.Conditions[0].Status = metav1.ConditionFalse }), writeChanged, 0},
		{"a new condition goes at once", true, true, moving(3), with(moving(3), func(s *nasv1alpha1.NodeAgentSetStatus) {
			s.Conditions = append(s.Conditions, metav1.Condition{Type: nasv1alpha1.ConditionPodTemplateValid})
		}), writeChanged, 0},
		{"Available turning False for want of available pods is a counter change", true, true,
			withAvailable(moving(3), metav1.ConditionTrue), withAvailable(moving(2), metav1.ConditionFalse), writeQuiet, statusQuietPeriod},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newMemory()
			if tc.wrote {
				m.statusWritten(set, now.Add(-lastWrite))
			}
			why, wait := m.statusWait(set, tc.old, tc.next, tc.inMotion, now)
			if why != tc.why || wait != tc.wait {
				t.Errorf("statusWait() = %q, %v; want %q, %v", why, wait, tc.why, tc.wait)
			}
		})
	}

	t.Run("counters that stay the same for the quiet period are written", func(t *testing.T) {
		m := newMemory()
		m.statusWritten(set, t0.Time)
		if _, wait := m.statusWait(set, moving(3), moving(4), true, t0.Add(100*time.Millisecond)); wait != statusQuietPeriod {
			t.Fatalf("first pass: wait %v, want %v", wait, statusQuietPeriod)
		}
		// A pass that sees the same counters (only the wording's transition time differs) waits for the rest.
		same := moving(4)
		same.Conditions[0].LastTransitionTime = metav1.NewTime(t0.Add(time.Second))
		if _, wait := m.statusWait(set, moving(3), same, true, t0.Add(400*time.Millisecond)); wait != 200*time.Millisecond {
			t.Fatalf("second pass: wait %v, want 200ms", wait)
		}
		if why, wait := m.statusWait(set, moving(3), moving(4), true, t0.Add(600*time.Millisecond)); why != writeQuiet || wait != 0 {
			t.Errorf("quiet pass: %q, %v; want %q, 0", why, wait, writeQuiet)
		}
	})
	t.Run("counters that keep moving are written once the interval has passed", func(t *testing.T) {
		m := newMemory()
		m.statusWritten(set, t0.Time)
		for i := range int32(5) {
			at := t0.Add(time.Duration(i) * 400 * time.Millisecond)
			if _, wait := m.statusWait(set, moving(0), moving(i+1), true, at); wait == 0 {
				t.Fatalf("pass %d at %v wrote counters that moved 400ms before", i, at)
			}
		}
		if why, wait := m.statusWait(set, moving(0), moving(7), true, t0.Add(statusWriteInterval)); why != writeInterval || wait != 0 {
			t.Errorf("after the interval: %q, %v; want %q, 0", why, wait, writeInterval)
		}
	})
	t.Run("a write starts the interval and the quiet period afresh", func(t *testing.T) {
		m := newMemory()
		m.statusWritten(set, t0.Time)
		m.statusWait(set, moving(3), moving(4), true, t0.Add(100*time.Millisecond))
		m.statusWritten(set, t0.Add(time.Second))
		if _, wait := m.statusWait(set, moving(4), moving(5), true, t0.Add(time.Second)); wait != statusQuietPeriod {
			t.Errorf("wait %v, want %v", wait, statusQuietPeriod)
		}
	})
	t.Run("a forgotten set starts afresh", func(t *testing.T) {
		m := newMemory()
		m.statusWritten(set, t0.Time)
		m.forget(client.ObjectKeyFromObject(set))
		if why, wait := m.statusWait(set, moving(3), moving(4), true, t0.Time); why != writeFirst || wait != 0 {
			t.Errorf("after forget: %q, %v; want %q, 0", why, wait, writeFirst)
		}
	})
}

// withAvailable adds an Available condition to s.
func withAvailable(s *nasv1alpha1.NodeAgentSetStatus, status metav1.ConditionStatus) *nasv1alpha1.NodeAgentSetStatus {
	s.Conditions = append(s.Conditions, metav1.Condition{Type: nasv1alpha1.ConditionAvailable, Status: status})
	return s
}

func TestInMotion(t *testing.T) {
	complete := planner.Rollout{Complete: true}
	for _, tc := range []struct {
		name string
		plan planner.Plan
		want bool
	}{
		{"nothing to do", planner.Plan{Rollout: complete}, false},
		{"creates", planner.Plan{Creates: []string{"a"}, Rollout: complete}, true},
		{"deletes", planner.Plan{Deletes: []planner.Deletion{{Node: "a"}}, Rollout: complete}, true},
		{"a template check", planner.Plan{CheckTemplateOn: "a", Rollout: complete}, true},
		{"pods to wait for", planner.Plan{Rollout: planner.Rollout{Target: 2, UpdatedAvailable: 1}}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := inMotion(tc.plan); got != tc.want {
				t.Errorf("inMotion = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestGateStatus(t *testing.T) {
	plan := planner.Plan{Status: planner.Counters{DesiredNumberScheduled: 3},
		Gate: planner.GatePlan{State: planner.GateActive, Mode: nasv1alpha1.BootstrapGateMode, Key: "readiness.nodeagentset.io/a", NumberGated: 2}}
	in := statusInput{set: &nasv1alpha1.NodeAgentSet{}, plan: plan, now: t0}
	st := computeStatus(in)
	want, _ := planner.GateCondition(plan)
	c := meta.FindStatusCondition(st.Conditions, nasv1alpha1.ConditionNodeReadinessGate)
	if st.NumberGated != 2 || c == nil || c.Reason != want.Reason || c.Message != want.Message {
		t.Fatalf("numberGated %d, condition %+v: want 2 and the planner's %+v", st.NumberGated, c, want)
	}
	if _, err := statusApplyPatch(in.set, &st); err != nil || !ownedConditionTypes[nasv1alpha1.ConditionNodeReadinessGate] {
		t.Errorf("the gate condition is not one the controller writes (err %v)", err)
	}
	in.set.Status = st
	in.plan.Gate = planner.GatePlan{}
	if st := computeStatus(in); st.NumberGated != 0 || meta.FindStatusCondition(st.Conditions, nasv1alpha1.ConditionNodeReadinessGate) != nil {
		t.Errorf("without a gate: numberGated %d, conditions %+v", st.NumberGated, st.Conditions)
	}
}

// The breakdown, its top reason and the skipped nodes are the plan's, capped as the API caps them.
func TestComputeStatusBreakdownAndSkippedNodes(t *testing.T) {
	plan := planner.Plan{
		Status: planner.Counters{DesiredNumberScheduled: 10, NumberAvailable: 3, NumberUnavailable: 7},
		Unavailable: []planner.UnavailableGroup{
			{Code: planner.ReasonNodeNotReady, Count: 6, Nodes: []string{"a", "b", "c", "d", "e"}},
			{Code: planner.ReasonInsufficientResources, Count: 1, Nodes: []string{"f"}},
		},
		Rollout: planner.Rollout{Phase: planner.RolloutComplete, Complete: true, Skipped: []planner.StuckNode{
			{Node: "a"}, {Node: "b"}, {Node: "c"}, {Node: "d"}, {Node: "e"}, {Node: "g"},
		}},
	}
	st := computeStatus(statusInput{set: &nasv1alpha1.NodeAgentSet{}, plan: plan, hash: "h", now: t0})
	want := []nasv1alpha1.UnavailableReason{
		{Reason: "NodeNotReady", Count: 6, Nodes: []string{"a", "b", "c", "d", "e"}},
		{Reason: "InsufficientResources", Count: 1, Nodes: []string{"f"}},
	}
	if !apiequality.Semantic.DeepEqual(st.UnavailableBreakdown, want) || st.TopUnavailableReason != "NodeNotReady" {
		t.Errorf("breakdown %+v top %q, want %+v and NodeNotReady", st.UnavailableBreakdown, st.TopUnavailableReason, want)
	}
	if s := st.SkippedNodes; s == nil || s.Count != 6 || len(s.Nodes) != nasv1alpha1.MaxNodesPerReason || s.Nodes[0] != "a" {
		t.Errorf("skippedNodes %+v, want 6, the first 5 named", s)
	}
	// All available, nothing skipped: the fields go.
	set := &nasv1alpha1.NodeAgentSet{Status: st}
	st = computeStatus(statusInput{set: set, plan: planner.Plan{Status: planner.Counters{DesiredNumberScheduled: 1, NumberAvailable: 1}}, hash: "h", now: t0})
	if st.UnavailableBreakdown != nil || st.TopUnavailableReason != "" || st.SkippedNodes != nil {
		t.Errorf("healthy set: breakdown %+v top %q skipped %+v, want none", st.UnavailableBreakdown, st.TopUnavailableReason, st.SkippedNodes)
	}
}
