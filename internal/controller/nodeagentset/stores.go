package nodeagentset

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// storeIndexPodController indexes the pod informer's store by the UID of the NodeAgentSet that
// controls each pod. It is a client-go index on the store itself, not a controller-runtime field
// index, so that stores.ownedPods can look it up without going through a List.
const storeIndexPodController = "nodeagentset.io/store-controller-uid"

// stores reads nodes and a set's pods straight from the informers' stores, as client-go listers do:
// the cached objects themselves, not copies. controller-runtime's cache List copies every object into
// the list's Items (meta.SetList); at 5,000 nodes those copies and their garbage were a fifth of the
// controller's CPU (docs/benchmarks.md). The objects are read-only: whatever writes copies first.
type stores struct {
	informers cache.Informers
}

// setupStoreIndexes adds the pod store's index; before the cache starts, or any time after.
func setupStoreIndexes(ctx context.Context, informers cache.Informers) error {
	inf, err := informers.GetInformer(ctx, &corev1.Pod{}, cache.BlockUntilSynced(false))
	if err != nil {
		return err
	}
	return inf.AddIndexers(toolscache.Indexers{storeIndexPodController: func(obj any) ([]string, error) {
		pod, ok := obj.(*corev1.Pod)
		if !ok {
			return nil, nil
		}
		if ref := setController(pod); ref != nil {
			return []string{string(ref.UID)}, nil
		}
		return nil, nil
	}})
}

func (s stores) indexer(ctx context.Context, obj client.Object) (toolscache.Indexer, error) {
	inf, err := s.informers.GetInformer(ctx, obj)
	if err != nil {
		return nil, err
	}
	si, ok := inf.(interface{ GetIndexer() toolscache.Indexer })
	if !ok {
		return nil, fmt.Errorf("the informer for %T (%T) has no store to read", obj, inf)
	}
	return si.GetIndexer(), nil
}

// nodes returns every cached node. The caller has first passed the node read barrier
// (waitForOwnNodeWrites): the store then holds every taint write of the readiness gate.
func (s stores) nodes(ctx context.Context) ([]*corev1.Node, error) {
	idx, err := s.indexer(ctx, &corev1.Node{})
	if err != nil {
		return nil, err
	}
	objs := idx.List()
	out := make([]*corev1.Node, 0, len(objs))
	for _, o := range objs {
		if n, ok := o.(*corev1.Node); ok {
			out = append(out, n)
		}
	}
	return out, nil
}

// ownedPods returns the cached pods a set controls. The caller has first passed the read barrier
// (waitForOwnWrites): the store then holds every pod write of this controller.
func (s stores) ownedPods(ctx context.Context, set types.UID) ([]*corev1.Pod, error) {
	idx, err := s.indexer(ctx, &corev1.Pod{})
	if err != nil {
		return nil, err
	}
	objs, err := idx.ByIndex(storeIndexPodController, string(set))
	if err != nil {
		return nil, err
	}
	out := make([]*corev1.Pod, 0, len(objs))
	for _, o := range objs {
		if p, ok := o.(*corev1.Pod); ok {
			out = append(out, p)
		}
	}
	return out, nil
}
