package nodeagentset

import (
	"context"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// pagedPods serves the metadata of pods as the API server does, two to a page.
type pagedPods struct {
	client.Reader
	items []metav1.PartialObjectMetadata
}

func (p pagedPods) List(_ context.Context, list client.ObjectList, opts ...client.ListOption) error {
	o := (&client.ListOptions{}).ApplyOptions(opts)
	from := 0
	if o.Continue != "" {
		from, _ = strconv.Atoi(o.Continue)
	}
	to := min(from+2, len(p.items))
	page := list.(*metav1.PartialObjectMetadataList)
	page.Items = p.items[from:to]
	if to < len(p.items) {
		page.Continue = strconv.Itoa(to)
	}
	return nil
}

func podMeta(name, rv string) metav1.PartialObjectMetadata {
	return metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", ResourceVersion: rv}}
}

func podAt(name, rv string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", ResourceVersion: rv}}
}

func TestStoreHolds(t *testing.T) {
	idx := toolscache.NewIndexer(toolscache.MetaNamespaceKeyFunc, toolscache.Indexers{})
	if err := idx.Add(podAt("a", "10")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		key  string
		rv   int64
		want bool
	}{
		{"ns/a", 10, true},  // the store holds the pod at that version.
		{"ns/a", 11, false}, // an older version of the pod.
		{"ns/b", 9, true},   // gone or not yet there, but the store has applied an event past it.
		{"ns/b", 12, false}, // not there, and the store has not got that far.
	} {
		if got := storeHolds(idx, tc.key, tc.rv); got != tc.want {
			t.Errorf("storeHolds(%s, %d) = %v, want %v", tc.key, tc.rv, got, tc.want)
		}
	}
}

func TestHandoverWaitsUntilTheStoreHoldsEveryListedPod(t *testing.T) {
	ctx := context.Background()
	inf := toolscache.NewSharedIndexInformer(nil, &corev1.Pod{}, 0, toolscache.Indexers{})
	informers := fakeInformers{byKind: map[string]toolscache.SharedIndexInformer{"Pod": inf}}
	store := inf.GetIndexer()
	for _, p := range []*corev1.Pod{podAt("a", "5"), podAt("b", "6")} {
		if err := store.Add(p); err != nil {
			t.Fatal(err)
		}
	}
	// The API server holds a newer b and a pod c the store has not seen: the old leader's last writes.
	api := pagedPods{items: []metav1.PartialObjectMetadata{podMeta("a", "5"), podMeta("b", "8"), podMeta("c", "9")}}
	h := newHandover(api, stores{informers: informers})

	done := make(chan error)
	go func() { done <- h.catchUp(ctx) }()
	select {
	case err := <-done:
		t.Fatalf("catchUp returned (%v) before the store held b at 8 and c", err)
	case <-time.After(200 * time.Millisecond):
	}
	if err := store.Update(podAt("b", "8")); err != nil {
		t.Fatal(err)
	}
	if err := store.Add(podAt("c", "9")); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("catchUp: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("catchUp did not return once the store had caught up")
	}
}
