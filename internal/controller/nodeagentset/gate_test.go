package nodeagentset

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/event"

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

func gateSet(name, key string, created int64) *nasv1alpha1.NodeAgentSet {
	set := testSet(name, nil)
	set.CreationTimestamp = metav1.NewTime(time.Unix(created, 0))
	set.Spec.NodeReadinessGate = &nasv1alpha1.NodeReadinessGate{TaintKey: key}
	return set
}

func gateReader(objs ...client.Object) client.Client {
	return fake.NewClientBuilder().WithScheme(testScheme()).WithObjects(objs...).
		WithIndex(&nasv1alpha1.NodeAgentSet{}, indexSetGateKey, setGateKey).Build()
}

func TestGateInputNamesTheOlderSet(t *testing.T) {
	const key = "readiness.nodeagentset.io/a"
	older, younger, other := gateSet("older", key, 1), gateSet("younger", key, 2), gateSet("other", key+"-b", 0)
	deleting := gateSet("deleting", key, 0)
	deleting.DeletionTimestamp, deleting.Finalizers = ptr.To(metav1.NewTime(time.Unix(5, 0))), []string{"x"}
	r := &Reconciler{Client: gateReader(older, younger, other, deleting), GatePrefixes: []string{"readiness.nodeagentset.io/"}}
	in, err := r.gateInput(context.Background(), younger)
	if err != nil || in.ConflictsWith != "ns/older" || len(in.AllowedPrefixes) != 1 {
		t.Errorf("younger: %+v, %v: want the conflict with ns/older", in, err)
	}
	if in, err := r.gateInput(context.Background(), older); err != nil || in.ConflictsWith != "" {
		t.Errorf("older: %+v, %v: want no conflict (a set being deleted owns nothing)", in, err)
	}
}

func TestGateHandlerWakesTheSetsSharingAKey(t *testing.T) {
	const key = "readiness.nodeagentset.io/a"
	older, younger, other := gateSet("older", key, 1), gateSet("younger", key, 2), gateSet("other", key+"-b", 0)
	h := gateHandler{reader: gateReader(older, younger, other)}
	q := newQueue()
	h.Delete(context.Background(), event.TypedDeleteEvent[client.Object]{Object: older}, q)
	if got := drain(q); !slices.Equal(got, []string{"younger"}) {
		t.Errorf("older deleted woke %v, want [younger]", got)
	}
	moved := younger.DeepCopy()
	moved.Spec.NodeReadinessGate.TaintKey = key + "-b"
	h.Update(context.Background(), event.TypedUpdateEvent[client.Object]{ObjectOld: younger, ObjectNew: moved}, q)
	if got := drain(q); !slices.Equal(got, []string{"older", "other"}) {
		t.Errorf("a key change woke %v, want the sets of both keys", got)
	}
	h.Update(context.Background(), event.TypedUpdateEvent[client.Object]{ObjectOld: younger, ObjectNew: younger.DeepCopy()}, q)
	if got := drain(q); len(got) != 0 {
		t.Errorf("an update that keeps the key woke %v", got)
	}
}
