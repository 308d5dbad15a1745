package nodeagentset

import (
	"context"
	"slices"
	"sort"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stypes "k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/util/workqueue"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
	"github.com/nodeagentset/nodeagentset/internal/planner"
)

func testScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(nasv1alpha1.AddToScheme(s))
	return s
}

// fakeReader is a fake client with the same pod indexes as the manager's cache.
func fakeReader(objs ...client.Object) client.Client {
	b := fake.NewClientBuilder().WithScheme(testScheme()).WithObjects(objs...)
	for name, fn := range podIndexes {
		b = b.WithIndex(&corev1.Pod{}, name, fn)
	}
	return b.Build()
}

func newQueue() queue {
	return workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[reconcile.Request]())
}

// drain returns the queued set names, sorted.
func drain(q queue) []string {
	var out []string
	for q.Len() > 0 {
		item, _ := q.Get()
		out = append(out, item.Name)
		q.Done(item)
	}
	sort.Strings(out)
	return out
}

func testSet(name string, nodeSelector map[string]string) *nasv1alpha1.NodeAgentSet {
	return &nasv1alpha1.NodeAgentSet{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: k8stypes.UID("uid-" + name)},
		Spec: nasv1alpha1.NodeAgentSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
				Spec:       corev1.PodSpec{NodeSelector: nodeSelector},
			},
		},
	}
}

func podOn(set *nasv1alpha1.NodeAgentSet, node string) *corev1.Pod {
	pod := planner.NewPod(set, node, "h")
	pod.Name = set.Name + "-" + node
	return pod
}

func node(name string, lbls map[string]string) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: lbls}}
}

func TestNodeSchedulingChanged(t *testing.T) {
	base := node("n", map[string]string{"a": "1"})
	base.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}
	heartbeat := base.DeepCopy()
	heartbeat.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, LastHeartbeatTime: metav1.Now()}}
	heartbeat.Annotations = map[string]string{"x": "y"}
	cordoned := base.DeepCopy()
	cordoned.Spec.Unschedulable = true
	relabelled := base.DeepCopy()
	relabelled.Labels["a"] = "2"
	tainted := base.DeepCopy()
	tainted.Spec.Taints = []corev1.Taint{{Key: "k", Effect: corev1.TaintEffectNoSchedule}}
	notReady := base.DeepCopy()
	notReady.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionFalse}}

	p := nodeSchedulingChanged()
	for name, tc := range map[string]struct {
		updated *corev1.Node
		want    bool
	}{
		"heartbeat and annotations": {heartbeat, false},
		"unschedulable alone":       {cordoned, false},
		"labels":                    {relabelled, true},
		"taints":                    {tainted, true},
		"Ready turning":             {notReady, true},
	} {
		t.Run(name, func(t *testing.T) {
			if got := p.Update(event.TypedUpdateEvent[*corev1.Node]{ObjectOld: base, ObjectNew: tc.updated}); got != tc.want {
				t.Errorf("Update = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestNodeHandlerWakesOnlyAffectedSets(t *testing.T) {
	gpu := testSet("gpu", map[string]string{"gpu": "true"})
	all := testSet("all", nil)
	ssd := testSet("ssd", map[string]string{"disk": "ssd"})
	plain := node("n1", map[string]string{"disk": "hdd"})
	// "all" already runs on n1; "gpu" and "ssd" do not select it.
	reader := fakeReader(gpu, all, ssd, plain, podOn(all, "n1"))
	h := nodeHandler{reader: reader}
	ctx := context.Background()

	t.Run("a new node wakes the sets that should run there and have no pod", func(t *testing.T) {
		q := newQueue()
		h.Create(ctx, event.TypedCreateEvent[*corev1.Node]{Object: node("n2", map[string]string{"gpu": "true"})}, q)
		if got := drain(q); !slices.Equal(got, []string{"all", "gpu"}) {
			t.Errorf("woke %v, want [all gpu]", got)
		}
	})
	t.Run("a label change wakes only sets whose verdict changed", func(t *testing.T) {
		q := newQueue()
		gpuLabelled := plain.DeepCopy()
		gpuLabelled.Labels["gpu"] = "true"
		h.Update(ctx, event.TypedUpdateEvent[*corev1.Node]{ObjectOld: plain, ObjectNew: gpuLabelled}, q)
		if got := drain(q); !slices.Equal(got, []string{"gpu"}) {
			t.Errorf("woke %v, want [gpu]", got)
		}
	})
	t.Run("an irrelevant label change wakes nobody", func(t *testing.T) {
		q := newQueue()
		other := plain.DeepCopy()
		other.Labels["team"] = "blue"
		h.Update(ctx, event.TypedUpdateEvent[*corev1.Node]{ObjectOld: plain, ObjectNew: other}, q)
		if got := drain(q); len(got) != 0 {
			t.Errorf("woke %v, want nobody", got)
		}
	})
	t.Run("a NoExecute taint wakes the sets with pods there", func(t *testing.T) {
		q := newQueue()
		tainted := plain.DeepCopy()
		tainted.Spec.Taints = []corev1.Taint{{Key: "evict", Effect: corev1.TaintEffectNoExecute}}
		h.Update(ctx, event.TypedUpdateEvent[*corev1.Node]{ObjectOld: plain, ObjectNew: tainted}, q)
		if got := drain(q); !slices.Equal(got, []string{"all"}) {
			t.Errorf("woke %v, want [all]", got)
		}
	})
	t.Run("the Ready condition turning wakes the sets with pods there", func(t *testing.T) {
		q := newQueue()
		down := plain.DeepCopy()
		down.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionFalse}}
		h.Update(ctx, event.TypedUpdateEvent[*corev1.Node]{ObjectOld: plain, ObjectNew: down}, q)
		if got := drain(q); !slices.Equal(got, []string{"all"}) {
			t.Errorf("woke %v, want [all]", got)
		}
	})
	t.Run("a tolerated out-of-service taint going wakes the sets with pods there", func(t *testing.T) {
		tolerant := testSet("tolerant", nil)
		tolerant.Spec.Template.Spec.Tolerations = []corev1.Toleration{{Operator: corev1.TolerationOpExists}}
		h := nodeHandler{reader: fakeReader(tolerant, plain, podOn(tolerant, "n1"))}
		q := newQueue()
		down := plain.DeepCopy()
		down.Spec.Taints = []corev1.Taint{{Key: corev1.TaintNodeOutOfService, Effect: corev1.TaintEffectNoExecute}}
		h.Update(ctx, event.TypedUpdateEvent[*corev1.Node]{ObjectOld: down, ObjectNew: plain}, q)
		if got := drain(q); !slices.Equal(got, []string{"tolerant"}) {
			t.Errorf("woke %v, want [tolerant] (the taint went)", got)
		}
	})
	t.Run("a deleted node wakes the sets with pods on it", func(t *testing.T) {
		q := newQueue()
		h.Delete(ctx, event.TypedDeleteEvent[*corev1.Node]{Object: plain}, q)
		if got := drain(q); !slices.Equal(got, []string{"all"}) {
			t.Errorf("woke %v, want [all]", got)
		}
	})
}

func TestPodHandler(t *testing.T) {
	a, b := testSet("a", nil), testSet("b", nil)
	b.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "a"}}
	h := podHandler{reader: fakeReader(a, b)}
	ctx := context.Background()

	t.Run("an owned pod wakes its owner only", func(t *testing.T) {
		q := newQueue()
		h.Create(ctx, event.TypedCreateEvent[*corev1.Pod]{Object: podOn(a, "n1")}, q)
		if got := drain(q); !slices.Equal(got, []string{"a"}) {
			t.Errorf("woke %v", got)
		}
	})
	t.Run("an orphan wakes every set whose selector matches it", func(t *testing.T) {
		q := newQueue()
		orphan := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "o", Namespace: "ns", Labels: map[string]string{"app": "a"}}}
		h.Create(ctx, event.TypedCreateEvent[*corev1.Pod]{Object: orphan}, q)
		if got := drain(q); !slices.Equal(got, []string{"a", "b"}) {
			t.Errorf("woke %v", got)
		}
	})
	t.Run("an orphan update with the same labels wakes nobody", func(t *testing.T) {
		q := newQueue()
		orphan := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "o", Namespace: "ns", Labels: map[string]string{"app": "a"}}}
		h.Update(ctx, event.TypedUpdateEvent[*corev1.Pod]{ObjectOld: orphan, ObjectNew: orphan.DeepCopy()}, q)
		if got := drain(q); len(got) != 0 {
			t.Errorf("woke %v", got)
		}
	})
	t.Run("a released pod wakes its old owner and the sets that may adopt it", func(t *testing.T) {
		q := newQueue()
		owned := podOn(a, "n1")
		released := owned.DeepCopy()
		released.OwnerReferences = nil
		h.Update(ctx, event.TypedUpdateEvent[*corev1.Pod]{ObjectOld: owned, ObjectNew: released}, q)
		if got := drain(q); !slices.Equal(got, []string{"a", "b"}) {
			t.Errorf("woke %v", got)
		}
	})
	t.Run("a pod of another controller wakes nobody", func(t *testing.T) {
		q := newQueue()
		foreign := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "f", Namespace: "ns", Labels: map[string]string{"app": "a"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "DaemonSet", Name: "a", UID: "x", Controller: new(bool)}}}}
		*foreign.OwnerReferences[0].Controller = true
		h.Delete(ctx, event.TypedDeleteEvent[*corev1.Pod]{Object: foreign}, q)
		if got := drain(q); len(got) != 0 {
			t.Errorf("woke %v", got)
		}
	})
	t.Run("a quiet set wakes at once; the events of the next interval wake it once, when it ends", func(t *testing.T) {
		q := newQueue()
		clk := clocktesting.NewFakePassiveClock(time.Now())
		throttled := podHandler{reader: h.reader, throttle: newWakeThrottle(50*time.Millisecond, clk)}
		throttled.Create(ctx, event.TypedCreateEvent[*corev1.Pod]{Object: podOn(a, "n1")}, q)
		if got := drain(q); !slices.Equal(got, []string{"a"}) {
			t.Fatalf("the first event woke %v, want [a] at once", got)
		}
		for _, n := range []string{"n2", "n3", "n4"} {
			clk.SetTime(clk.Now().Add(10 * time.Millisecond))
			throttled.Create(ctx, event.TypedCreateEvent[*corev1.Pod]{Object: podOn(a, n)}, q)
		}
		if q.Len() != 0 {
			t.Fatalf("woke again within the interval: %v", drain(q))
		}
		time.Sleep(200 * time.Millisecond)
		if got := drain(q); !slices.Equal(got, []string{"a"}) {
			t.Errorf("woke %v when the interval ended, want [a]", got)
		}
		clk.SetTime(clk.Now().Add(time.Second))
		throttled.Delete(ctx, event.TypedDeleteEvent[*corev1.Pod]{Object: podOn(a, "n1")}, q)
		if got := drain(q); !slices.Equal(got, []string{"a"}) {
			t.Errorf("a set quiet for a second woke %v, want [a] at once", got)
		}
	})
}

func TestNodeChangesWakeSetsWhoseOverrideChanges(t *testing.T) {
	sized := testSet("sized", nil)
	sized.Spec.NodeOverrides = []nasv1alpha1.NodeOverride{
		{Name: "gpu", NodeSelector: metav1.LabelSelector{MatchLabels: map[string]string{"gpu": "true"}}},
		{Name: "by-size", Containers: []nasv1alpha1.ContainerOverride{{Name: "agent", ResourcesFromAllocatable: &nasv1alpha1.AllocatableShare{
			Requests: map[corev1.ResourceName]nasv1alpha1.Percentage{corev1.ResourceMemory: "1%"},
		}}}},
	}
	plain := testSet("plain", nil)
	n1 := node("n1", map[string]string{"team": "a"})
	n1.Status.Allocatable = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("16Gi")}
	h := nodeHandler{reader: fakeReader(sized, plain, n1, podOn(sized, "n1"), podOn(plain, "n1"))}
	ctx := context.Background()

	for name, tc := range map[string]struct {
		change func(*corev1.Node)
		want   []string
	}{
		"a label that moves the node to another override": {func(n *corev1.Node) { n.Labels["gpu"] = "true" }, []string{"sized"}},
		"allocatable that resizes a share": {func(n *corev1.Node) {
			n.Status.Allocatable[corev1.ResourceMemory] = resource.MustParse("32Gi")
		}, []string{"sized"}},
		"a label no override looks at": {func(n *corev1.Node) { n.Labels["team"] = "b" }, nil},
	} {
		t.Run(name, func(t *testing.T) {
			updated := n1.DeepCopy()
			tc.change(updated)
			ev := event.TypedUpdateEvent[*corev1.Node]{ObjectOld: n1, ObjectNew: updated}
			if !nodeSchedulingChanged().Update(ev) {
				t.Fatal("the predicate dropped the update")
			}
			q := newQueue()
			h.Update(ctx, ev, q)
			if got := drain(q); !slices.Equal(got, tc.want) {
				t.Errorf("woke %v, want %v", got, tc.want)
			}
		})
	}
}
