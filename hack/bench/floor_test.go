package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
)

// The reference's pods are the trials' pods: the same object for kube-apiserver, kube-scheduler, kwok
// and the garbage collector, so that the floor measures what the controllers' pods go through.
func TestFloorPodsAreTheControllersPods(t *testing.T) {
	cs := fake.NewClientset()
	pods, err := newFloorPods(context.Background(), cs, "bench-floor-1")
	if err != nil {
		t.Fatal(err)
	}
	cm, err := cs.CoreV1().ConfigMaps("bench-floor-1").Get(context.Background(), "reference", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the reference pods' owner was not created: %v", err)
	}

	old, cur := pods.pod("worker-7", image1), pods.pod("worker-7", image2)
	for _, p := range []*corev1.Pod{old, cur} {
		if p.Spec.NodeName != "" {
			t.Errorf("a reference pod is bound to %q: it must be left to the scheduler", p.Spec.NodeName)
		}
		if len(p.OwnerReferences) != 1 || p.OwnerReferences[0].UID != cm.UID || p.OwnerReferences[0].Controller == nil ||
			!*p.OwnerReferences[0].Controller {
			t.Errorf("owner references %+v, want the ConfigMap %s as controller", p.OwnerReferences, cm.UID)
		}
		terms := p.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
		if len(terms) != 1 || len(terms[0].MatchFields) != 1 || terms[0].MatchFields[0].Values[0] != "worker-7" {
			t.Errorf("node affinity %+v, want the pod pinned to worker-7 by matchFields", terms)
		}
	}
	if old.Spec.Containers[0].Image != image1 || cur.Spec.Containers[0].Image != image2 {
		t.Errorf("images %s and %s, want %s and %s", old.Spec.Containers[0].Image, cur.Spec.Containers[0].Image, image1, image2)
	}
	h1, h2 := old.Labels[nasv1alpha1.ControllerRevisionHashLabel], cur.Labels[nasv1alpha1.ControllerRevisionHashLabel]
	if h1 == "" || h1 == h2 {
		t.Errorf("revision labels %q and %q, want two different revisions", h1, h2)
	}
	// Apart from the image and what follows from it, the two revisions' pods are one object.
	aligned := cur.DeepCopy()
	aligned.Spec.Containers[0].Image = image1
	aligned.Labels, aligned.Annotations = old.Labels, old.Annotations
	if !apiequality.Semantic.DeepEqual(aligned, old) {
		t.Errorf("the two revisions' pods differ in more than the image:\n%+v\n%+v", old, cur)
	}
}

func TestInParallelBoundsCallsAndReportsAnError(t *testing.T) {
	items := make([]int, 500)
	for i := range items {
		items[i] = i
	}
	var (
		mu               sync.Mutex
		seen             = map[int]int{}
		inFlight, widest atomic.Int32
	)
	failed := errors.New("item 250")
	err := inParallel(8, items, func(i int) error {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for w := widest.Load(); n > w && !widest.CompareAndSwap(w, n); w = widest.Load() {
		}
		mu.Lock()
		seen[i]++
		mu.Unlock()
		if i == 250 {
			return failed
		}
		return nil
	})
	if !errors.Is(err, failed) {
		t.Errorf("error %v, want %v", err, failed)
	}
	if len(seen) != len(items) {
		t.Errorf("%d items called, want all %d (an error stops none of the others)", len(seen), len(items))
	}
	for i, n := range seen {
		if n != 1 {
			t.Errorf("item %d called %d times", i, n)
		}
	}
	if w := widest.Load(); w > 8 {
		t.Errorf("%d calls in flight, want at most 8", w)
	}
}

func TestFloorThroughput(t *testing.T) {
	if got := (floorResult{created: 2}).throughput(1000); got != 500 {
		t.Errorf("1,000 creates in 2 s: %v pods/s, want 500", got)
	}
	if got := (floorResult{}).throughput(1000); got != 0 {
		t.Errorf("no creates timed: %v pods/s, want 0", got)
	}
}

// The reference's client gets connections of its own: client-go hands configs that differ only in
// rate limits the same transport, so without them the reference's creates would share the HTTP/2
// connection of the bench's pod watch, which times it.
func TestFloorClientHasItsOwnTransport(t *testing.T) {
	rc := &rest.Config{Host: "https://127.0.0.1:1", TLSClientConfig: rest.TLSClientConfig{Insecure: true}}
	shared, err := rest.TransportFor(rc)
	if err != nil {
		t.Fatal(err)
	}
	unlimited := rest.CopyConfig(rc)
	unlimited.QPS, unlimited.Burst = -1, 0
	if same, err := rest.TransportFor(unlimited); err != nil || same != shared {
		t.Fatalf("client-go no longer shares a transport between configs that differ in rate limits (err %v): the test says nothing", err)
	}
	own, err := rest.TransportFor(floorConfig(rc))
	if err != nil {
		t.Fatal(err)
	}
	if own == shared {
		t.Error("the reference's client shares the bench watch's transport")
	}
	if c := floorConfig(rc); c.QPS != -1 {
		t.Errorf("the reference's client is rate-limited: QPS %v", c.QPS)
	}
}

// The report sets the trials' "every node has a pod", a time the bench's watch took, against the
// reference's creates as the same watch saw them, beside the time its create calls took.
func TestPrintFloorSetsEveryNodeHasAPodAgainstTheSameWatch(t *testing.T) {
	var out bytes.Buffer
	res := map[string][]result{kindNAS: {{kind: kindNAS, created: 3, cover: 8, rollout: 16}}}
	printFloor(&out, config{nodes: 1000}, res, []floorResult{{created: 2, seen: 4, ready: 8, rollout: 16, gone: 6}})
	for _, row := range []string{
		"| every node has a pod / reference all created | 0.00 | 1.50 |",
		"| every node has a pod / reference all seen by the same watch | 0.00 | 0.75 |",
	} {
		if !strings.Contains(out.String(), row) {
			t.Errorf("the report lacks %q:\n%s", row, out.String())
		}
	}
	if !strings.Contains(out.String(), "the bench's pod watch has seen every one at 4 s") {
		t.Errorf("the reference's paragraph does not say when the watch saw its pods:\n%s", out.String())
	}
}

// Each trial is also set against the reference of its own pair: the median and the range of those
// ratios, which the ratio of the two medians can hide when the pairs' references differ.
func TestPrintFloorSetsEachTrialAgainstItsOwnPair(t *testing.T) {
	var out bytes.Buffer
	res := map[string][]result{kindNAS: {
		{kind: kindNAS, created: 3, cover: 8, rollout: 20},
		{kind: kindNAS, created: 3, cover: 12, rollout: 20},
		{kind: kindNAS, created: 3, cover: 9, rollout: 20},
	}}
	floors := []floorResult{
		{created: 2, seen: 3, ready: 8, rollout: 20, gone: 10},
		{created: 2, seen: 3, ready: 12, rollout: 25, gone: 10},
		{created: 3, seen: 3, ready: 6, rollout: 16, gone: 10},
	}
	printFloor(&out, config{nodes: 1000}, res, floors)
	for _, row := range []string{
		"| vs the reference of the same pair: median of the 3 pairs' ratios (range) | DaemonSet (kcm) | NodeAgentSet |",
		// 3/2, 3/2, 3/3.
		"| every node has a pod / reference all created | - | 1.50 (1.00-1.50) |",
		// 8/8, 12/12, 9/6: the medians' ratio would say 9/8.
		"| coverage / reference all Ready | - | 1.00 (1.00-1.50) |",
		// 20/18, 20/22, 20/16.
		"| rollout / reference gone + Ready | - | 1.11 (0.91-1.25) |",
		"| rollout / reference rollout at the same budget | - | 1.00 (0.80-1.25) |",
	} {
		if !strings.Contains(out.String(), row) {
			t.Errorf("the report lacks %q:\n%s", row, out.String())
		}
	}
	var one bytes.Buffer
	printFloor(&one, config{nodes: 1000}, res, floors[:1])
	if strings.Contains(one.String(), "of the same pair") {
		t.Errorf("a single pair's report has a table of pairs:\n%s", one.String())
	}
}
