package nodeagentset

import (
	"encoding/json"
	"testing"
	"time"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
	"github.com/nodeagentset/nodeagentset/internal/planner"
)

// applyTaintsPatch applies the gate's patch to a node as the API server does (it uses this library).
func applyTaintsPatch(t *testing.T, server *corev1.Node, w planner.GateWrite) (*corev1.Node, error) {
	t.Helper()
	data, err := taintsPatch(w)
	if err != nil {
		t.Fatal(err)
	}
	patch, err := jsonpatch.DecodePatch(data)
	if err != nil {
		t.Fatal(err)
	}
	doc, _ := json.Marshal(server)
	out, err := patch.Apply(doc)
	if err != nil {
		return nil, err
	}
	var n corev1.Node
	return &n, json.Unmarshal(out, &n)
}

func TestTaintsPatch(t *testing.T) {
	gate := corev1.Taint{Key: "readiness.nodeagentset.io/a", Effect: corev1.TaintEffectNoSchedule}
	other := corev1.Taint{Key: "node.kubernetes.io/not-ready", Effect: corev1.TaintEffectNoSchedule}
	read := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n"}, Spec: corev1.NodeSpec{Taints: []corev1.Taint{other, gate}}}
	lift := planner.GateWrite{Node: read, Taints: []corev1.Taint{other}, Code: planner.GateLift}

	t.Run("lifts the one taint when nothing changed", func(t *testing.T) {
		got, err := applyTaintsPatch(t, read.DeepCopy(), lift)
		if err != nil || len(got.Spec.Taints) != 1 || got.Spec.Taints[0] != other {
			t.Fatalf("taints = %v, err = %v", got, err)
		}
	})
	t.Run("fails when another taint changed since the read", func(t *testing.T) {
		server := read.DeepCopy()
		server.Spec.Taints = []corev1.Taint{gate}
		if _, err := applyTaintsPatch(t, server, lift); err == nil {
			t.Fatal("the patch overwrote a concurrent change of the node's taints")
		}
	})
	t.Run("adds to a node without taints, and fails if it got one meanwhile", func(t *testing.T) {
		bare := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n"}}
		add := planner.GateWrite{Node: bare, Taints: []corev1.Taint{gate}, Code: planner.GateReturn}
		got, err := applyTaintsPatch(t, bare.DeepCopy(), add)
		if err != nil || len(got.Spec.Taints) != 1 || got.Spec.Taints[0] != gate {
			t.Fatalf("taints = %v, err = %v", got, err)
		}
		if _, err := applyTaintsPatch(t, read.DeepCopy(), add); err == nil {
			t.Fatal("the patch overwrote taints added since the read")
		}
	})
}

func TestOlderSet(t *testing.T) {
	at := func(ns, name string, sec int64) *nasv1alpha1.NodeAgentSet {
		return &nasv1alpha1.NodeAgentSet{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name,
			CreationTimestamp: metav1.NewTime(time.Unix(sec, 0))}}
	}
	if !olderSet(at("z", "z", 1), at("a", "a", 2)) || olderSet(at("a", "a", 2), at("z", "z", 1)) {
		t.Error("creationTimestamp does not decide first")
	}
	if !olderSet(at("a", "b", 1), at("b", "a", 1)) || olderSet(at("b", "a", 1), at("a", "b", 1)) {
		t.Error("namespace/name does not break the tie")
	}
}

func TestGateTaintsChanged(t *testing.T) {
	set := &nasv1alpha1.NodeAgentSet{ObjectMeta: metav1.ObjectMeta{UID: "uid"},
		Spec: nasv1alpha1.NodeAgentSetSpec{NodeReadinessGate: &nasv1alpha1.NodeReadinessGate{TaintKey: "readiness.nodeagentset.io/a"}}}
	node := func(ts ...corev1.Taint) *corev1.Node { return &corev1.Node{Spec: corev1.NodeSpec{Taints: ts}} }
	gate := corev1.Taint{Key: "readiness.nodeagentset.io/a", Effect: corev1.TaintEffectNoExecute}
	other := corev1.Taint{Key: "x", Effect: corev1.TaintEffectNoSchedule}
	if !gateTaintsChanged(set, node(gate, other), node(other)) {
		t.Error("the gate taint's removal is not a change")
	}
	if gateTaintsChanged(set, node(gate), node(gate, other)) {
		t.Error("another taint's change wakes the set")
	}
	if !gateTaintsChanged(set, nil, node(corev1.Taint{Key: "old-key", Value: "uid", Effect: corev1.TaintEffectNoSchedule})) {
		t.Error("a taint carrying the set's UID is not the set's")
	}
}
