package nodeagentset

import (
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// The cache's transforms (docs/design/cache.md): each object is cut down to what the controller reads
// before it is stored. A transform that is set for a kind replaces the cache's default one, so each
// also drops managedFields.

// stripNode drops what the controller never reads from a cached node, the bulk of a node object: the
// image list, volume bookkeeping and managed fields. Labels, taints, conditions and addresses stay.
func stripNode(obj any) (any, error) {
	if node, ok := obj.(*corev1.Node); ok {
		node.ManagedFields = nil
		node.Status.Images = nil
		node.Status.VolumesInUse = nil
		node.Status.VolumesAttached = nil
	}
	return obj, nil
}

// stripPod keeps the pods the controller reads whole: those a NodeAgentSet controls and the orphans
// (no controller), which a set may adopt. A pod controlled by anything else (a ReplicaSet's, a Job's:
// most pods of a cluster) is never read beyond its controller reference, so only a stub of its
// metadata stays: enough for the store's key, the watch's resourceVersion and the pod handler, which
// looks at nothing but the controller reference of such a pod.
func stripPod(obj any) (any, error) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil
	}
	pod.ManagedFields = nil
	if ref := metav1.GetControllerOf(pod); ref == nil || setController(pod) != nil {
		return pod, nil
	}
	return &corev1.Pod{TypeMeta: pod.TypeMeta, ObjectMeta: metav1.ObjectMeta{
		Name: pod.Name, Namespace: pod.Namespace, UID: pod.UID, ResourceVersion: pod.ResourceVersion,
		Generation: pod.Generation, CreationTimestamp: pod.CreationTimestamp, DeletionTimestamp: pod.DeletionTimestamp,
		OwnerReferences: pod.OwnerReferences,
	}}, nil
}

// stripRevision drops the data (a whole pod template) of the ControllerRevisions another controller
// owns, the DaemonSets' and StatefulSets' history: the controller reads only its own revisions and the
// orphans it may adopt. Labels stay, so the lists by label selector see the same revisions.
func stripRevision(obj any) (any, error) {
	cr, ok := obj.(*appsv1.ControllerRevision)
	if !ok {
		return obj, nil
	}
	cr.ManagedFields = nil
	if ref := metav1.GetControllerOf(cr); ref != nil && setController(cr) == nil {
		cr.Data = runtime.RawExtension{}
		cr.Annotations = nil
	}
	return cr, nil
}
