package nodeagentset

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
)

// fakeInformers hands out one client-go informer per kind, as controller-runtime's cache does; only
// GetInformer is used by stores.
type fakeInformers struct {
	cache.Informers
	byKind map[string]toolscache.SharedIndexInformer
}

func (f fakeInformers) GetInformer(_ context.Context, obj client.Object, _ ...cache.InformerGetOption) (cache.Informer, error) {
	switch obj.(type) {
	case *corev1.Pod:
		return f.byKind["Pod"], nil
	default:
		return f.byKind["Node"], nil
	}
}

func TestStoresReadTheCachedObjects(t *testing.T) {
	ctx := context.Background()
	informers := fakeInformers{byKind: map[string]toolscache.SharedIndexInformer{
		"Pod":  toolscache.NewSharedIndexInformer(nil, &corev1.Pod{}, 0, toolscache.Indexers{}),
		"Node": toolscache.NewSharedIndexInformer(nil, &corev1.Node{}, 0, toolscache.Indexers{}),
	}}
	if err := setupStoreIndexes(ctx, informers); err != nil {
		t.Fatal(err)
	}
	owned := func(name string, set types.UID) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", OwnerReferences: []metav1.OwnerReference{{
			APIVersion: nasv1alpha1.GroupVersion.String(), Kind: "NodeAgentSet", Name: "agent", UID: set, Controller: ptr.To(true),
		}}}}
	}
	mine, other := owned("mine", "set-a"), owned("other", "set-b")
	orphan := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "orphan", Namespace: "ns", Labels: map[string]string{"app": "agent"}}}
	for _, p := range []*corev1.Pod{mine, other, orphan} {
		if err := informers.byKind["Pod"].GetIndexer().Add(p); err != nil {
			t.Fatal(err)
		}
	}
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-a"}}
	if err := informers.byKind["Node"].GetIndexer().Add(node); err != nil {
		t.Fatal(err)
	}

	s := stores{informers: informers}
	pods, err := s.ownedPods(ctx, "set-a")
	if err != nil {
		t.Fatal(err)
	}
	if len(pods) != 1 || pods[0] != mine {
		t.Errorf("ownedPods(set-a) = %v, want exactly the cached pod %q itself (no copy)", pods, mine.Name)
	}
	nodes, err := s.nodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes) != 1 || nodes[0] != node {
		t.Errorf("nodes() = %v, want exactly the cached node itself (no copy)", nodes)
	}
}
