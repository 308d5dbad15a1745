package nodeagentset

import (
	"context"
	"reflect"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
	"github.com/nodeagentset/nodeagentset/internal/planner"
)

type queue = workqueue.TypedRateLimitingInterface[reconcile.Request]

// podEventDelay is the least time between two wakes of a set by pod events; the events of that window
// fold into one pass. While pods come and go in bulk, a set would otherwise be reconciled back to back,
// once per event or two: a pass over 5,000 nodes costs about 15 ms, so that is a core kept busy, with
// passes that each see one more pod. With the delay a set in motion gets at most ten passes a second.
// A set that has not been woken for longer is woken at once (wakeThrottle): a rollout step waits for
// its pods' events, and a fixed delay on each one was a tenth of a second per step on the critical path.
const podEventDelay = 100 * time.Millisecond

// podHandler wakes the set that controls a pod, or, for an orphan, every set in its namespace whose
// selector matches it (a candidate for adoption), through throttle (at once when it is nil).
type podHandler struct {
	reader   client.Reader
	throttle *wakeThrottle
}

// wakeThrottle wakes each set at most once per interval: at once when its last wake is an interval
// old, otherwise when the interval ends (the workqueue folds the events of the window into that one
// wake). It remembers each set's last (or next) wake; entries an interval old are swept, at most once an
// interval, once more than wakeThrottleSweep sets are remembered.
type wakeThrottle struct {
	interval time.Duration
	clock    clock.PassiveClock
	mu       sync.Mutex
	last     map[reconcile.Request]time.Time
	swept    time.Time
}

// wakeThrottleSweep is the number of remembered sets above which a wake sweeps the old entries.
const wakeThrottleSweep = 1024

func newWakeThrottle(interval time.Duration, clk clock.PassiveClock) *wakeThrottle {
	return &wakeThrottle{interval: interval, clock: clk, last: map[reconcile.Request]time.Time{}}
}

func (t *wakeThrottle) wake(req reconcile.Request, q queue) {
	if t == nil {
		q.Add(req)
		return
	}
	now := t.clock.Now()
	t.mu.Lock()
	at := now
	if last, ok := t.last[req]; ok {
		switch {
		case last.After(now): // A wake is due then: this event folds into it.
			at = last
		case now.Before(last.Add(t.interval)):
			at = last.Add(t.interval)
		}
	}
	t.last[req] = at
	if len(t.last) > wakeThrottleSweep && now.Sub(t.swept) > t.interval {
		t.swept = now
		for r, last := range t.last {
			if now.Sub(last) > t.interval {
				delete(t.last, r)
			}
		}
	}
	t.mu.Unlock()
	if at.Equal(now) {
		q.Add(req)
		return
	}
	q.AddAfter(req, at.Sub(now))
}

func (h podHandler) Create(ctx context.Context, e event.TypedCreateEvent[*corev1.Pod], q queue) {
	h.enqueueFor(ctx, e.Object, q)
}

func (h podHandler) Update(ctx context.Context, e event.TypedUpdateEvent[*corev1.Pod], q queue) {
	oldRef, newRef := metav1.GetControllerOf(e.ObjectOld), metav1.GetControllerOf(e.ObjectNew)
	if oldRef != nil && !reflect.DeepEqual(oldRef, newRef) {
		h.enqueueController(e.ObjectOld, q)
	}
	if newRef == nil && reflect.DeepEqual(e.ObjectOld.Labels, e.ObjectNew.Labels) && oldRef == nil {
		// An orphan whose labels did not change cannot have become adoptable.
		return
	}
	h.enqueueFor(ctx, e.ObjectNew, q)
}

func (h podHandler) Delete(_ context.Context, e event.TypedDeleteEvent[*corev1.Pod], q queue) {
	h.enqueueController(e.Object, q)
}

func (h podHandler) Generic(ctx context.Context, e event.TypedGenericEvent[*corev1.Pod], q queue) {
	h.enqueueFor(ctx, e.Object, q)
}

func (h podHandler) enqueueFor(ctx context.Context, pod *corev1.Pod, q queue) {
	if metav1.GetControllerOf(pod) != nil {
		h.enqueueController(pod, q)
		return
	}
	if len(pod.Labels) == 0 || pod.DeletionTimestamp != nil {
		return
	}
	var sets nasv1alpha1.NodeAgentSetList
	if err := h.reader.List(ctx, &sets, client.InNamespace(pod.Namespace)); err != nil {
		log.FromContext(ctx).Error(err, "Listing NodeAgentSets for an orphan pod", "pod", klog.KObj(pod))
		return
	}
	for i := range sets.Items {
		if selectorMatches(&sets.Items[i], pod.Labels) {
			h.throttle.wake(requestFor(&sets.Items[i]), q)
		}
	}
}

func (h podHandler) enqueueController(obj metav1.Object, q queue) {
	if ref := setController(obj); ref != nil {
		h.throttle.wake(reconcile.Request{NamespacedName: types.NamespacedName{Namespace: obj.GetNamespace(), Name: ref.Name}}, q)
	}
}

// selectorMatches: the set's selector is valid, non-empty and matches the labels.
func selectorMatches(set *nasv1alpha1.NodeAgentSet, lbls map[string]string) bool {
	return podSelector(set).Matches(labels.Set(lbls))
}

// podSelector is the set's selector, parsed once for a loop over many objects (parsing validates
// every requirement with regular expressions). An invalid or empty selector selects nothing.
func podSelector(set *nasv1alpha1.NodeAgentSet) labels.Selector {
	sel, err := metav1.LabelSelectorAsSelector(set.Spec.Selector)
	if err != nil || sel.Empty() {
		return labels.Nothing()
	}
	return sel
}

// nodeHandler wakes only the sets a node event can affect (upstream's syncNodeUpdate): a set whose
// verdict for the node changed, a set that should run on the node and has no pod there, and a set
// with a pod on a node it should not run on (to delete it, or count it as misscheduled). A node whose
// health changes (its Ready condition turns, or it gains or loses an unreachable, not-ready or
// out-of-service taint) wakes the sets with pods on it: a pod kept for a node shutdown is replaced
// once the node is back, and an unhealthy node skipped by a rollout is updated once it is back. A
// deleted node wakes the sets with pods on it.
type nodeHandler struct {
	reader client.Reader
}

func (h nodeHandler) Create(ctx context.Context, e event.TypedCreateEvent[*corev1.Node], q queue) {
	h.enqueueAffected(ctx, nil, e.Object, q)
}

func (h nodeHandler) Update(ctx context.Context, e event.TypedUpdateEvent[*corev1.Node], q queue) {
	h.enqueueAffected(ctx, e.ObjectOld, e.ObjectNew, q)
}

func (h nodeHandler) Delete(ctx context.Context, e event.TypedDeleteEvent[*corev1.Node], q queue) {
	for key := range h.setsWithPodsOn(ctx, e.Object.Name) {
		q.Add(reconcile.Request{NamespacedName: key})
	}
}

func (h nodeHandler) Generic(ctx context.Context, e event.TypedGenericEvent[*corev1.Node], q queue) {
	h.enqueueAffected(ctx, nil, e.Object, q)
}

func (h nodeHandler) enqueueAffected(ctx context.Context, oldNode, node *corev1.Node, q queue) {
	var sets nasv1alpha1.NodeAgentSetList
	if err := h.reader.List(ctx, &sets); err != nil {
		log.FromContext(ctx).Error(err, "Listing NodeAgentSets for a node event", "node", node.Name)
		return
	}
	if len(sets.Items) == 0 {
		return
	}
	withPods := h.setsWithPodsOn(ctx, node.Name)
	for i := range sets.Items {
		set := &sets.Items[i]
		placer := planner.PlacerFor(set)
		now := placer.Place(node)
		_, hasPod := withPods[types.NamespacedName{Namespace: set.Namespace, Name: set.Name}]
		changed := oldNode != nil && !reflect.DeepEqual(placer.Place(oldNode), now)
		healthChanged := oldNode != nil && health(oldNode) != health(node)
		// With nodeOverrides, new labels or allocatable may change the pod the node should run.
		overridden := oldNode != nil && hasPod && planner.OverrideChanged(set, oldNode, node)
		if changed || overridden || (now.ShouldRun && !hasPod) || (!now.ShouldRun && hasPod) || (healthChanged && hasPod) ||
			gateTaintsChanged(set, oldNode, node) {
			q.Add(requestFor(set))
		}
	}
}

// setsWithPodsOn returns the sets that control a pod targeting the node, through the node index.
func (h nodeHandler) setsWithPodsOn(ctx context.Context, nodeName string) map[types.NamespacedName]struct{} {
	var pods corev1.PodList
	if err := h.reader.List(ctx, &pods, client.MatchingFields{indexPodNode: nodeName}); err != nil {
		log.FromContext(ctx).Error(err, "Listing agent pods of a node", "node", nodeName)
		return nil
	}
	out := make(map[types.NamespacedName]struct{}, len(pods.Items))
	for i := range pods.Items {
		if ref := setController(&pods.Items[i]); ref != nil {
			out[types.NamespacedName{Namespace: pods.Items[i].Namespace, Name: ref.Name}] = struct{}{}
		}
	}
	return out
}

// nodeSchedulingChanged passes node updates that change what eligibility looks at (labels, taints)
// the status of the Ready condition, or what a node override sizes the pod from (allocatable), and
// drops the rest: status heartbeats, other conditions, annotations, spec.unschedulable alone.
func nodeSchedulingChanged() predicate.TypedPredicate[*corev1.Node] {
	return predicate.TypedFuncs[*corev1.Node]{
		UpdateFunc: func(e event.TypedUpdateEvent[*corev1.Node]) bool {
			return !apiequality.Semantic.DeepEqual(e.ObjectOld.Labels, e.ObjectNew.Labels) ||
				!apiequality.Semantic.DeepEqual(e.ObjectOld.Spec.Taints, e.ObjectNew.Spec.Taints) ||
				readyStatus(e.ObjectOld) != readyStatus(e.ObjectNew) ||
				!apiequality.Semantic.DeepEqual(e.ObjectOld.Status.Allocatable, e.ObjectNew.Status.Allocatable)
		},
	}
}

// health sums up what makes a node healthy or not: the status of its Ready condition and its health
// taints.
func health(node *corev1.Node) string {
	out := string(readyStatus(node))
	for _, t := range node.Spec.Taints {
		if planner.IsHealthTaint(t.Key) {
			out += "," + t.Key + ":" + string(t.Effect)
		}
	}
	return out
}

// readyStatus is the status of the node's Ready condition; empty when it has none.
func readyStatus(node *corev1.Node) corev1.ConditionStatus {
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status
		}
	}
	return ""
}

func requestFor(set *nasv1alpha1.NodeAgentSet) reconcile.Request {
	return reconcile.Request{NamespacedName: types.NamespacedName{Namespace: set.Namespace, Name: set.Name}}
}

var (
	_ handler.TypedEventHandler[*corev1.Pod, reconcile.Request]  = podHandler{}
	_ handler.TypedEventHandler[*corev1.Node, reconcile.Request] = nodeHandler{}
)
