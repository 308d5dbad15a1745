package nodeagentset

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
	"github.com/nodeagentset/nodeagentset/internal/planner"
)

func TestPodBatchNote(t *testing.T) {
	long := strings.Repeat("x", 253)
	for _, tc := range []struct {
		name  string
		verb  string
		names []string
		want  string
	}{
		{"one pod reads as upstream's", "Created", []string{"agent-a"}, "Created pod: agent-a"},
		{"a few are all named", "Deleted", []string{"a", "b", "c"}, "Deleted 3 pods: a, b, c"},
		{"five are all named", "Created", []string{"a", "b", "c", "d", "e"}, "Created 5 pods: a, b, c, d, e"},
		{"more than five are counted", "Created", []string{"a", "b", "c", "d", "e", "f", "g"}, "Created 7 pods: a, b, c, d, e and 2 more"},
		{"long names stop early", "Created", []string{long, long, long, long, long}, "Created 5 pods: " + long + ", " + long + ", " + long + " and 2 more"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := podBatchNote(tc.verb, tc.names)
			if got != tc.want {
				t.Errorf("podBatchNote() = %q, want %q", got, tc.want)
			}
			if len(got) > 1024 {
				t.Errorf("note is %d bytes, events.k8s.io allows 1024", len(got))
			}
		})
	}
}

// One pass that deletes two pods and creates three records one event per reason, naming the pods.
func TestApplyRecordsOneEventPerPass(t *testing.T) {
	set := &nasv1alpha1.NodeAgentSet{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "agent", UID: "set-uid"}}
	set.Spec.Template.Spec.Containers = []corev1.Container{{Name: "agent", Image: "agent:1"}}
	objs := make([]*corev1.Pod, 0, 2)
	deletions := make([]planner.Deletion, 0, 2)
	for i := range 2 {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: fmt.Sprintf("old-%d", i), UID: "uid"}}
		objs = append(objs, pod)
		deletions = append(deletions, planner.Deletion{Pod: pod, Node: fmt.Sprintf("node-%d", i), Reason: planner.DeleteOutdated})
	}
	c := fakeReader(objs[0], objs[1])
	recorder := events.NewFakeRecorder(10)
	r := NewReconciler(c, nil, c, recorder, clock.RealClock{})

	err := r.apply(context.Background(), set, "hash", planner.Plan{Deletes: deletions, Creates: []string{"node-a", "node-b", "node-c"}})
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	close(recorder.Events)
	var got []string
	for e := range recorder.Events {
		got = append(got, e)
	}
	if len(got) != 2 {
		t.Fatalf("recorded %d events, want 2: %q", len(got), got)
	}
	if got[0] != "Normal SuccessfulDelete Deleted 2 pods: old-0, old-1" {
		t.Errorf("delete event = %q", got[0])
	}
	if !strings.HasPrefix(got[1], "Normal SuccessfulCreate Created 3 pods: agent-") {
		t.Errorf("create event = %q", got[1])
	}
	var pods corev1.PodList
	if err := c.List(context.Background(), &pods); err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		if !strings.Contains(got[1], p.Name) {
			t.Errorf("create event %q does not name pod %s", got[1], p.Name)
		}
	}
}

// capturingRecorder keeps the regarding object of each event.
type capturingRecorder struct{ regarding []runtime.Object }

func (c *capturingRecorder) Eventf(regarding, _ runtime.Object, _, _, _, _ string, _ ...any) {
	c.regarding = append(c.regarding, regarding)
}

// Events about two versions of a set regard the same object, so that the recorder can fold them.
func TestIdentityRecorderDropsTheVersion(t *testing.T) {
	c := &capturingRecorder{}
	r := identityRecorder{c}
	set := &nasv1alpha1.NodeAgentSet{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "agent", UID: "u", ResourceVersion: "7",
		Generation: 3, Labels: map[string]string{"a": "b"}}}
	r.Eventf(set, nil, corev1.EventTypeNormal, "R", "A", "n")
	set.ResourceVersion = "8"
	r.Eventf(set, nil, corev1.EventTypeNormal, "R", "A", "n")
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", ResourceVersion: "9"}}
	r.Eventf(pod, nil, corev1.EventTypeNormal, "R", "A", "n")
	want := &nasv1alpha1.NodeAgentSet{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "agent", UID: "u"}}
	for i := range 2 {
		if !apiequality.Semantic.DeepEqual(c.regarding[i], want) {
			t.Errorf("event %d regards %+v, want %+v", i, c.regarding[i], want)
		}
	}
	if c.regarding[2] != pod {
		t.Errorf("an event about another kind must regard the object as given")
	}
}

func TestSlowStartWindows(t *testing.T) {
	set := &nasv1alpha1.NodeAgentSet{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "agent", UID: "uid-1"}}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	m := newMemory()
	if got := m.slowStartWindow(set, now); got != slowStartFirstWindow {
		t.Fatalf("a set's first pass starts at %d, want %d", got, slowStartFirstWindow)
	}
	m.recordSlowStart(set, 128, false, now)
	if got := m.slowStartWindow(set, now.Add(10*time.Second)); got != 128 {
		t.Errorf("the next pass starts at %d, want the 128 the last one reached", got)
	}
	if got := m.slowStartWindow(set, now.Add(slowStartMemory)); got != slowStartFirstWindow {
		t.Errorf("after %v the pass starts at %d, want %d", slowStartMemory, got, slowStartFirstWindow)
	}
	m.recordSlowStart(set, 64, true, now)
	for _, later := range []time.Duration{0, slowStartMemory, time.Hour} {
		if got := m.slowStartWindow(set, now.Add(later)); got != slowStartProbeWindow {
			t.Errorf("%v after a failed create the pass starts at %d, want %d", later, got, slowStartProbeWindow)
		}
	}
	m.recordSlowStart(set, 32, false, now)
	if got := m.slowStartWindow(set, now); got != 32 {
		t.Errorf("after a pass with every create accepted the next starts at %d, want the 32 it reached", got)
	}
	m.forget(client.ObjectKeyFromObject(set))
	if got := m.slowStartWindow(set, now); got != slowStartFirstWindow {
		t.Errorf("a forgotten set starts at %d, want %d", got, slowStartFirstWindow)
	}
}

// createCounter counts the creates a fake client is asked for and the ones it accepts, and checks
// that no create starts while more are in flight than the slow-start window allows: start at first,
// one more for each accepted create.
type createCounter struct {
	calls, inFlight, accepted atomic.Int32
	overWindow                atomic.Bool
	start                     int32
	refuse                    func(node string) bool
}

func (c *createCounter) client() client.Client {
	return fake.NewClientBuilder().WithScheme(testScheme()).WithInterceptorFuncs(interceptor.Funcs{
		Create: func(ctx context.Context, cl client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			c.calls.Add(1)
			if c.inFlight.Add(1) > c.accepted.Load()+c.start {
				c.overWindow.Store(true)
			}
			defer c.inFlight.Add(-1)
			if node, _ := planner.TargetNodeName(obj.(*corev1.Pod)); c.refuse(node) {
				return apierrors.NewForbidden(corev1.Resource("pods"), "", errors.New("refused"))
			}
			if err := cl.Create(ctx, obj, opts...); err != nil {
				return err
			}
			c.accepted.Add(1)
			return nil
		},
	}).Build()
}

func nodeNames(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("node-%03d", i)
	}
	return out
}

func TestCreatesGrowTheirWindowWithEachAcceptedCreate(t *testing.T) {
	set := &nasv1alpha1.NodeAgentSet{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "agent", UID: "set-uid"}}
	set.Spec.Template.Spec.Containers = []corev1.Container{{Name: "agent", Image: "agent:1"}}
	cc := &createCounter{start: slowStartFirstWindow, refuse: func(string) bool { return false }}
	r := NewReconciler(cc.client(), nil, nil, events.NewFakeRecorder(10), clock.RealClock{})

	if err := r.createNodePods(context.Background(), set, "hash", nodeNames(300), nil); err != nil {
		t.Fatalf("createNodePods: %v", err)
	}
	if got := cc.accepted.Load(); got != 300 {
		t.Errorf("created %d pods, want 300", got)
	}
	if cc.overWindow.Load() {
		t.Errorf("a create started while more were in flight than the accepted creates allow")
	}
	if got := r.memory.slowStartWindow(set, time.Now()); got != podWritesInFlight {
		t.Errorf("the next pass starts with %d in flight, want the cap %d", got, podWritesInFlight)
	}
}

func TestCreatesStopAtTheFirstRefusal(t *testing.T) {
	set := &nasv1alpha1.NodeAgentSet{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "agent", UID: "set-uid"}}
	set.Spec.Template.Spec.Containers = []corev1.Container{{Name: "agent", Image: "agent:1"}}

	t.Run("creates refused on every node cost one window, then one call a pass", func(t *testing.T) {
		// The template's dry-run passed (a pass creates only then), and the creates are refused all
		// the same: a quota used up since, a webhook that refuses every real create.
		cc := &createCounter{start: slowStartFirstWindow, refuse: func(string) bool { return true }}
		r := NewReconciler(cc.client(), nil, nil, events.NewFakeRecorder(2*slowStartFirstWindow), clock.RealClock{})
		if err := r.createNodePods(context.Background(), set, "hash", nodeNames(300), nil); err == nil {
			t.Fatal("createNodePods returned no error for refused creates")
		}
		if got := cc.calls.Load(); got > slowStartFirstWindow {
			t.Errorf("%d create calls, want at most the first window, %d", got, slowStartFirstWindow)
		}
		for pass := range 3 {
			cc.calls.Store(0)
			if err := r.createNodePods(context.Background(), set, "hash", nodeNames(300), nil); err == nil {
				t.Fatal("createNodePods returned no error for refused creates")
			}
			if got := cc.calls.Load(); got != 1 {
				t.Errorf("pass %d after the refusals: %d create calls, want 1", pass+2, got)
			}
		}
	})

	t.Run("a refusal midway stops the pass and forgets the window", func(t *testing.T) {
		cc := &createCounter{start: 8, refuse: func(node string) bool { return node == "node-010" }}
		r := NewReconciler(cc.client(), nil, nil, events.NewFakeRecorder(10), clock.RealClock{})
		r.memory.recordSlowStart(set, 8, false, time.Now())
		if err := r.createNodePods(context.Background(), set, "hash", nodeNames(100), nil); err == nil {
			t.Fatal("createNodePods returned no error for a refused create")
		}
		if got := cc.accepted.Load(); got >= 99 {
			t.Errorf("%d creates accepted: the pass went on after the refusal", got)
		}
		if cc.overWindow.Load() {
			t.Errorf("a create started while more were in flight than the accepted creates allow")
		}
		if got := r.memory.slowStartWindow(set, time.Now()); got != slowStartProbeWindow {
			t.Errorf("after a refusal the next pass starts with %d in flight, want %d", got, slowStartProbeWindow)
		}
	})
}

func TestApplyRelabelsAndCreatesOverridePods(t *testing.T) {
	set := testSet("agent", nil)
	set.Spec.Template.Spec.Containers = []corev1.Container{{Name: "agent", Image: "agent:1"}}
	set.Spec.NodeOverrides = []nasv1alpha1.NodeOverride{{
		Name:         "gpu",
		NodeSelector: metav1.LabelSelector{MatchLabels: map[string]string{"gpu": "true"}},
		Containers:   []nasv1alpha1.ContainerOverride{{Name: "agent", Image: "agent:cuda"}},
	}}
	kept := podOn(set, "node-0")
	kept.Labels[nasv1alpha1.ControllerRevisionHashLabel] = "old"
	c := fakeReader(kept)
	r := NewReconciler(c, nil, c, events.NewFakeRecorder(10), clock.RealClock{})
	gpu := planner.RenderForNode(set, node("node-1", map[string]string{"gpu": "true"}))
	plan := planner.Plan{
		Relabels:  []planner.Relabel{{Pod: kept, Node: "node-0"}},
		Creates:   []string{"node-1"},
		Overrides: map[string]planner.NodeOverride{"node-1": gpu},
	}
	if err := r.apply(context.Background(), set, "new", plan); err != nil {
		t.Fatalf("apply: %v", err)
	}
	var pods corev1.PodList
	if err := c.List(context.Background(), &pods); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, p := range pods.Items {
		node, _ := planner.TargetNodeName(&p)
		got[node] = p.Labels[nasv1alpha1.ControllerRevisionHashLabel] + " " + p.Labels[planner.OverrideLabel] + " " + p.Spec.Containers[0].Image
	}
	want := map[string]string{"node-0": "new  agent:1", "node-1": "new gpu agent:cuda"}
	if !apiequality.Semantic.DeepEqual(got, want) {
		t.Errorf("pods %v, want %v", got, want)
	}
	if kept.Labels[nasv1alpha1.ControllerRevisionHashLabel] != "old" {
		t.Error("apply changed the cached pod")
	}
}

// The chaos spec saw a surge set delete an old pod a second after it became Ready, beside a new pod
// still Pending (maxUnavailable 0): the pass planned from a cache in which the old pod was not Ready
// yet. A delete carries the resourceVersion the plan saw, so a pod that changed since stays.
func TestDeletesOnlyThePodVersionThePlanSaw(t *testing.T) {
	set := &nasv1alpha1.NodeAgentSet{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "agent", UID: "set-uid"}}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "old", UID: "uid"}}
	c := fakeReader(pod)
	r := NewReconciler(c, nil, c, events.NewFakeRecorder(10), clock.RealClock{})
	var seen corev1.Pod
	if err := c.Get(context.Background(), client.ObjectKeyFromObject(pod), &seen); err != nil {
		t.Fatal(err)
	}
	// The kubelet reports the pod Ready after the plan read it.
	ready := seen.DeepCopy()
	ready.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
	if err := c.Update(context.Background(), ready); err != nil {
		t.Fatal(err)
	}

	del := []planner.Deletion{{Pod: &seen, Node: "node-0", Reason: planner.DeleteOutdated}}
	if err := r.apply(context.Background(), set, "hash", planner.Plan{Deletes: del}); err != nil {
		t.Fatalf("apply: %v", err)
	}
	if err := c.Get(context.Background(), client.ObjectKeyFromObject(pod), &corev1.Pod{}); err != nil {
		t.Errorf("the pod that changed after the plan saw it was deleted: %v", err)
	}

	// The version the plan saw is the current one: it goes.
	if err := c.Get(context.Background(), client.ObjectKeyFromObject(pod), &seen); err != nil {
		t.Fatal(err)
	}
	if err := r.apply(context.Background(), set, "hash", planner.Plan{Deletes: del}); err != nil {
		t.Fatalf("apply: %v", err)
	}
	if err := c.Get(context.Background(), client.ObjectKeyFromObject(pod), &corev1.Pod{}); !apierrors.IsNotFound(err) {
		t.Errorf("the pod as the plan saw it was not deleted: %v", err)
	}
}
