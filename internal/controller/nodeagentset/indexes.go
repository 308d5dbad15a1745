package nodeagentset

import (
	"context"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
	"github.com/nodeagentset/nodeagentset/internal/planner"
)

// Cache indexes, so that finding a set's pods or a node's agent pods never walks every pod.
const (
	// indexPodOrphan: namespace of a pod with no controller at all (a candidate for adoption).
	indexPodOrphan = "nodeagentset.io/orphan-namespace"
	// indexPodNode: target node of a pod controlled by a NodeAgentSet.
	indexPodNode = "nodeagentset.io/node"
)

// setController returns the NodeAgentSet controller reference of an object, or nil.
func setController(obj metav1.Object) *metav1.OwnerReference {
	ref := metav1.GetControllerOf(obj)
	if ref == nil || ref.Kind != "NodeAgentSet" || ref.APIVersion != nasv1alpha1.GroupVersion.String() {
		return nil
	}
	return ref
}

// SetupIndexes registers the indexes with the manager's cache: field indexes for the client's
// lists, and the pod store's own index (stores.go).
func SetupIndexes(ctx context.Context, c cache.Cache) error {
	for name, fn := range podIndexes {
		if err := c.IndexField(ctx, &corev1.Pod{}, name, fn); err != nil {
			return err
		}
	}
	if err := c.IndexField(ctx, &appsv1.ControllerRevision{}, indexRevisionController, revisionControllerUID); err != nil {
		return err
	}
	if err := setupGateIndexes(ctx, c); err != nil {
		return err
	}
	return setupStoreIndexes(ctx, c)
}

// revisionControllerUID indexes a ControllerRevision by the NodeAgentSet that controls it.
func revisionControllerUID(o client.Object) []string {
	if ref := setController(o); ref != nil {
		return []string{string(ref.UID)}
	}
	return nil
}

// podIndexes maps each index name to its function.
var podIndexes = map[string]client.IndexerFunc{
	indexPodOrphan: func(o client.Object) []string {
		if metav1.GetControllerOf(o) == nil && len(o.GetLabels()) > 0 {
			return []string{o.GetNamespace()}
		}
		return nil
	},
	indexPodNode: func(o client.Object) []string {
		if setController(o) == nil {
			return nil
		}
		if node, ok := planner.TargetNodeName(o.(*corev1.Pod)); ok {
			return []string{node}
		}
		return nil
	},
}
