package planner

import (
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
)

const gateKey = "readiness.nodeagentset.io/agent"

// ownTaint is the taint the set puts back; registered is the one a node joins with.
var (
	ownTaint   = corev1.Taint{Key: gateKey, Value: "set-uid", Effect: corev1.TaintEffectNoSchedule}
	registered = corev1.Taint{Key: gateKey, Effect: corev1.TaintEffectNoExecute}
	otherTaint = corev1.Taint{Key: "team.example.com/other", Effect: corev1.TaintEffectNoSchedule}
)

func withGate(mode nasv1alpha1.NodeReadinessGateMode, mutate ...func(*nasv1alpha1.NodeReadinessGate)) func(*nasv1alpha1.NodeAgentSet) {
	return func(s *nasv1alpha1.NodeAgentSet) {
		g := &nasv1alpha1.NodeReadinessGate{TaintKey: gateKey, Mode: mode}
		for _, m := range mutate {
			m(g)
		}
		s.Spec.NodeReadinessGate = g
	}
}

func grace(seconds int32) func(*nasv1alpha1.NodeReadinessGate) {
	return func(g *nasv1alpha1.NodeReadinessGate) { g.GracePeriodSeconds = ptr.To(seconds) }
}

func maxTainted(v intstr.IntOrString) func(*nasv1alpha1.NodeReadinessGate) {
	return func(g *nasv1alpha1.NodeReadinessGate) { g.MaxTaintedNodes = &v }
}

// gateWrites renders the plan's writes as "node:Code[taint keys after]".
func gateWrites(p Plan) []string {
	out := make([]string, 0, len(p.Gate.Writes))
	for _, w := range p.Gate.Writes {
		out = append(out, fmt.Sprintf("%s:%s%v", w.Node.Name, w.Code, taintKeys(w.Taints)))
	}
	return out
}

func taintKeys(ts []corev1.Taint) []string {
	out := make([]string, 0, len(ts))
	for _, t := range ts {
		out = append(out, t.Key+"="+t.Value+":"+string(t.Effect))
	}
	return out
}

func TestGate(t *testing.T) {
	unreadySince := func(at time.Time) func(*corev1.Pod) {
		return func(p *corev1.Pod) { setReady(p, corev1.ConditionFalse, at) }
	}
	tests := []struct {
		name       string
		set        *nasv1alpha1.NodeAgentSet
		gate       GateInput
		nodes      []*corev1.Node
		pods       []*corev1.Pod
		state      GateState
		writes     []string
		codes      map[string]GateCode
		gated      int32
		finalizer  bool
		requeueFor time.Duration
	}{
		{
			name:   "bootstrap lifts the registered taint once the agent is available, keeps the node's other taints",
			set:    newSet(withGate(nasv1alpha1.BootstrapGateMode), withTolerations(corev1.Toleration{Operator: corev1.TolerationOpExists})),
			nodes:  []*corev1.Node{newNode("a", nil, withTaints(otherTaint, registered)), newNode("b", nil, withTaints(registered))},
			pods:   []*corev1.Pod{newPod("pa", "a", ready), newPod("pb", "b")},
			state:  GateActive,
			writes: []string{"a:Lift[team.example.com/other=:NoSchedule]"},
			codes:  map[string]GateCode{"a": GateLift, "b": GateWaiting},
			gated:  1,
		},
		{
			name:  "bootstrap waits for minReadySeconds",
			set:   newSet(withGate(nasv1alpha1.BootstrapGateMode), withMinReadySeconds(10)),
			nodes: []*corev1.Node{newNode("a", nil, withTaints(registered))},
			pods:  []*corev1.Pod{newPod("pa", "a", readySince(t0.Add(-5*time.Second)))},
			state: GateActive,
			codes: map[string]GateCode{"a": GateWaiting},
			gated: 1,
		},
		{
			name:  "bootstrap never adds the taint",
			set:   newSet(withGate(nasv1alpha1.BootstrapGateMode)),
			nodes: []*corev1.Node{newNode("a", nil)},
			pods:  []*corev1.Pod{newPod("pa", "a", notReady)},
			state: GateActive,
			codes: map[string]GateCode{},
		},
		{
			name:  "an effect filter leaves the key's other effect alone",
			set:   newSet(withGate(nasv1alpha1.BootstrapGateMode, func(g *nasv1alpha1.NodeReadinessGate) { g.Effect = corev1.TaintEffectNoSchedule })),
			nodes: []*corev1.Node{newNode("a", nil, withTaints(registered))},
			pods:  []*corev1.Pod{newPod("pa", "a", ready)},
			state: GateActive,
			codes: map[string]GateCode{},
		},
		{
			name:  "a key without an allowed prefix touches no node",
			set:   newSet(withGate(nasv1alpha1.BootstrapGateMode, func(g *nasv1alpha1.NodeReadinessGate) { g.TaintKey = "node.kubernetes.io/unschedulable" })),
			nodes: []*corev1.Node{newNode("a", nil, withTaints(corev1.Taint{Key: "node.kubernetes.io/unschedulable", Effect: corev1.TaintEffectNoSchedule}))},
			pods:  []*corev1.Pod{newPod("pa", "a", ready)},
			state: GateKeyNotAllowed,
			codes: map[string]GateCode{},
		},
		{
			name:  "a key an older set gates touches no node",
			set:   newSet(withGate(nasv1alpha1.BootstrapGateMode)),
			gate:  GateInput{ConflictsWith: "default/older"},
			nodes: []*corev1.Node{newNode("a", nil, withTaints(registered))},
			pods:  []*corev1.Pod{newPod("pa", "a", ready)},
			state: GateKeyConflict,
			codes: map[string]GateCode{},
		},
		{
			name:  "a refused set still removes the taints it put there itself",
			set:   newSet(withGate(nasv1alpha1.ContinuousGateMode)),
			gate:  GateInput{ConflictsWith: "default/older"},
			nodes: []*corev1.Node{newNode("a", nil, withTaints(ownTaint))},
			pods:  []*corev1.Pod{newPod("pa", "a", notReady)},
			state: GateKeyConflict, writes: []string{"a:Release[]"},
			codes:     map[string]GateCode{"a": GateRelease},
			finalizer: true,
		},
		{
			name: "continuous: the taint returns after the grace period, not before",
			set: newSet(withGate(nasv1alpha1.ContinuousGateMode, grace(30), maxTainted(intstr.FromInt32(5))),
				withTolerations(corev1.Toleration{Key: otherTaint.Key, Operator: corev1.TolerationOpExists})),
			nodes: []*corev1.Node{newNode("a", nil), newNode("b", nil, withTaints(otherTaint)), newNode("c", nil)},
			pods: []*corev1.Pod{
				newPod("pa", "a", unreadySince(t0.Add(-10*time.Second))),
				newPod("pb", "b", unreadySince(t0.Add(-31*time.Second))),
				newPod("pc", "c", ready),
			},
			state:      GateActive,
			writes:     []string{"b:Return[team.example.com/other=:NoSchedule readiness.nodeagentset.io/agent=set-uid:NoSchedule]"},
			codes:      map[string]GateCode{"a": GateGracePeriod, "b": GateReturn},
			gated:      1,
			finalizer:  true,
			requeueFor: 20 * time.Second,
		},
		{
			name:  "continuous: a pod that never was Ready counts from its creation",
			set:   newSet(withGate(nasv1alpha1.ContinuousGateMode, grace(30), maxTainted(intstr.FromInt32(5)))),
			nodes: []*corev1.Node{newNode("a", nil)},
			pods:  []*corev1.Pod{newPod("pa", "a", created(t0.Add(-time.Minute)))},
			state: GateActive, writes: []string{"a:Return[readiness.nodeagentset.io/agent=set-uid:NoSchedule]"},
			codes: map[string]GateCode{"a": GateReturn}, gated: 1, finalizer: true,
		},
		{
			name:  "continuous: a node whose pod the set replaces is not tainted",
			set:   newSet(withGate(nasv1alpha1.ContinuousGateMode, grace(0), maxTainted(intstr.FromInt32(5)))),
			nodes: []*corev1.Node{newNode("a", nil), newNode("b", nil)},
			pods:  []*corev1.Pod{newPod("pa", "a", terminating)},
			state: GateActive,
			codes: map[string]GateCode{"a": GateReplacing, "b": GateReplacing}, finalizer: true,
		},
		{
			name: "continuous: maxTaintedNodes caps the returned taints, longest unavailable first, counting the set's own",
			set:  newSet(withGate(nasv1alpha1.ContinuousGateMode, grace(0), maxTainted(intstr.FromString("50%")))),
			nodes: []*corev1.Node{newNode("a", nil), newNode("b", nil), newNode("c", nil, withTaints(ownTaint)), newNode("d", nil),
				newNode("e", nil, withTaints(registered))},
			pods: []*corev1.Pod{
				newPod("pa", "a", unreadySince(t0.Add(-time.Minute))),
				newPod("pb", "b", unreadySince(t0.Add(-2*time.Minute))),
				newPod("pc", "c", notReady),
				newPod("pd", "d", unreadySince(t0.Add(-3*time.Minute))),
				newPod("pe", "e", notReady),
			},
			state:  GateActive,
			writes: []string{"b:Return[readiness.nodeagentset.io/agent=set-uid:NoSchedule]", "d:Return[readiness.nodeagentset.io/agent=set-uid:NoSchedule]"},
			codes: map[string]GateCode{"a": GateMaxTainted, "b": GateReturn, "c": GateWaiting, "d": GateReturn,
				"e": GateWaiting},
			gated: 4, finalizer: true,
		},
		{
			name:  "continuous: the set's taint on a node it no longer targets goes; a registered one stays",
			set:   newSet(withGate(nasv1alpha1.ContinuousGateMode), withNodeSelector(blueLabels)),
			nodes: []*corev1.Node{newNode("a", nil, withTaints(ownTaint)), newNode("b", nil, withTaints(registered))},
			state: GateActive, writes: []string{"a:Release[]"},
			codes: map[string]GateCode{"a": GateRelease}, finalizer: true,
		},
		{
			name:  "after a change of key, the set's taints of the old key go",
			set:   newSet(withGate(nasv1alpha1.ContinuousGateMode, func(g *nasv1alpha1.NodeReadinessGate) { g.TaintKey = gateKey + "-2" })),
			nodes: []*corev1.Node{newNode("a", nil, withTaints(ownTaint)), newNode("b", nil, withTaints(ownTaint))},
			pods:  []*corev1.Pod{newPod("pa", "a", ready), newPod("pb", "b", terminating)},
			state: GateActive, writes: []string{"a:Release[]", "b:Release[]"},
			codes: map[string]GateCode{"a": GateRelease, "b": GateRelease}, finalizer: true,
		},
		{
			name:  "bootstrap after continuous: the set's taints go, the finalizer may",
			set:   newSet(withGate(nasv1alpha1.BootstrapGateMode)),
			nodes: []*corev1.Node{newNode("a", nil, withTaints(ownTaint))},
			pods:  []*corev1.Pod{newPod("pa", "a", notReady)},
			state: GateActive, writes: []string{"a:Release[]"},
			codes: map[string]GateCode{"a": GateRelease}, finalizer: true,
		},
		{
			name:  "continuous lifts its own taint and a registered one together once the agent is back",
			set:   newSet(withGate(nasv1alpha1.ContinuousGateMode)),
			nodes: []*corev1.Node{newNode("a", nil, withTaints(ownTaint, registered))},
			pods:  []*corev1.Pod{newPod("pa", "a", ready)},
			state: GateActive, writes: []string{"a:Lift[]"},
			codes: map[string]GateCode{"a": GateLift}, finalizer: true,
		},
		{
			name:  "no gate, no write, no finalizer",
			set:   newSet(),
			nodes: []*corev1.Node{newNode("a", nil, withTaints(registered))},
			pods:  []*corev1.Pod{newPod("pa", "a", ready)},
			codes: map[string]GateCode{},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := Compute(Input{Set: tc.set, Hash: curHash, Nodes: tc.nodes, Pods: tc.pods, Now: t0, Gate: tc.gate,
				Template: TemplateVerdict{State: TemplateAccepted}})
			if p.Gate.State != tc.state {
				t.Errorf("state = %q, want %q", p.Gate.State, tc.state)
			}
			if got := gateWrites(p); fmt.Sprint(got) != fmt.Sprint(tc.writes) {
				t.Errorf("writes = %v\nwant     %v", got, tc.writes)
			}
			codes := map[string]GateCode{}
			for n, s := range p.Gate.Nodes {
				codes[n] = s.Code
			}
			if fmt.Sprint(codes) != fmt.Sprint(tc.codes) {
				t.Errorf("codes = %v, want %v", codes, tc.codes)
			}
			if p.Gate.NumberGated != tc.gated {
				t.Errorf("numberGated = %d, want %d", p.Gate.NumberGated, tc.gated)
			}
			if p.Gate.Finalizer != tc.finalizer {
				t.Errorf("finalizer = %v, want %v", p.Gate.Finalizer, tc.finalizer)
			}
			if tc.requeueFor != 0 && p.RequeueAfter != tc.requeueFor {
				t.Errorf("requeueAfter = %s, want %s", p.RequeueAfter, tc.requeueFor)
			}
		})
	}
}

func TestGateRegisteredLiftIsMarked(t *testing.T) {
	set := newSet(withGate(nasv1alpha1.ContinuousGateMode))
	p := Compute(Input{Set: set, Hash: curHash, Now: t0,
		Nodes: []*corev1.Node{newNode("a", nil, withTaints(registered)), newNode("b", nil, withTaints(ownTaint))},
		Pods:  []*corev1.Pod{newPod("pa", "a", ready), newPod("pb", "b", ready)}})
	if len(p.Gate.Writes) != 2 || !p.Gate.Writes[0].Registered || p.Gate.Writes[1].Registered {
		t.Fatalf("writes = %+v: want a's lift marked registered, b's not", p.Gate.Writes)
	}
}

func TestGateTaintIsTolerated(t *testing.T) {
	set := newSet(withGate(nasv1alpha1.BootstrapGateMode))
	node := newNode("a", nil, withTaints(registered))
	if p := PlacerFor(set).Place(node); !p.ShouldRun {
		t.Fatalf("a node carrying the gate taint is not eligible: %+v", p.Exclusion)
	}
	if p := NewPlacer(&set.Spec.Template.Spec).Place(node); p.ShouldRun {
		t.Fatal("the template alone tolerates the gate taint: the test proves nothing")
	}
	pod := NewPod(set, "a", curHash)
	want, _ := GateToleration(set)
	found := 0
	for _, tol := range pod.Spec.Tolerations {
		if tol == want {
			found++
		}
	}
	if found != 1 || want.Effect != "" {
		t.Fatalf("pod tolerations %v: want %v once, for every effect", pod.Spec.Tolerations, want)
	}
}

func TestGateKeyAllowed(t *testing.T) {
	for _, tc := range []struct {
		key      string
		prefixes []string
		want     bool
	}{
		{"readiness.nodeagentset.io/agent", nil, true},
		{"node.kubernetes.io/unschedulable", nil, false},
		{"readiness.k8s.io/cni", []string{"readiness.nodeagentset.io/", "readiness.k8s.io/"}, true},
		{"readiness.nodeagentset.io.evil.com/x", nil, false},
	} {
		if got := GateKeyAllowed(tc.key, tc.prefixes); got != tc.want {
			t.Errorf("GateKeyAllowed(%q, %v) = %v, want %v", tc.key, tc.prefixes, got, tc.want)
		}
	}
}

func TestReleaseGate(t *testing.T) {
	set := newSet(withGate(nasv1alpha1.ContinuousGateMode))
	nodes := []*corev1.Node{newNode("b", nil, withTaints(otherTaint, ownTaint)), newNode("a", nil, withTaints(registered)),
		newNode("c", nil, withTaints(ownTaint))}
	got := ReleaseGate(set, nodes)
	if s := fmt.Sprint(gateWrites(Plan{Gate: GatePlan{Writes: got}})); s != "[b:Release[team.example.com/other=:NoSchedule] c:Release[]]" {
		t.Fatalf("release writes = %s", s)
	}
}
