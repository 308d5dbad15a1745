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

// stripPod keeps the pods the controller reads: those a NodeAgentSet controls (less what stripPodSpec
// drops) and, whole, the orphans (no controller), which a set may adopt. A pod controlled by anything else (a ReplicaSet's, a Job's:
// most pods of a cluster) is never read beyond its controller reference, so only a stub of its
// metadata stays: enough for the store's key, the watch's resourceVersion and the pod handler, which
// looks at nothing but the controller reference of such a pod.
func stripPod(obj any) (any, error) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil
	}
	pod.ManagedFields = nil
	if ref := metav1.GetControllerOf(pod); ref == nil {
		return pod, nil
	}
	if setController(pod) != nil {
		stripPodSpec(&pod.Spec)
		return pod, nil
	}
	return &corev1.Pod{TypeMeta: pod.TypeMeta, ObjectMeta: metav1.ObjectMeta{
		Name: pod.Name, Namespace: pod.Namespace, UID: pod.UID, ResourceVersion: pod.ResourceVersion,
		Generation: pod.Generation, CreationTimestamp: pod.CreationTimestamp, DeletionTimestamp: pod.DeletionTimestamp,
		OwnerReferences: pod.OwnerReferences,
	}}, nil
}

// stripPodSpec drops from the spec of a set's pod what the controller never reads from a pod (the
// template it was made from is in the set and its revision; the pod's own spec counts only for where
// it runs and what it tolerates): volumes, and each container's command, environment, mounts, probes
// and hooks, the bulk of an agent's pod. Names, images, ports, resources, node name, affinity and
// tolerations stay.
func stripPodSpec(spec *corev1.PodSpec) {
	spec.Volumes = nil
	for _, containers := range [][]corev1.Container{spec.InitContainers, spec.Containers} {
		for i := range containers {
			c := &containers[i]
			c.Command, c.Args, c.Env, c.EnvFrom = nil, nil, nil, nil
			c.VolumeMounts, c.VolumeDevices = nil, nil
			c.LivenessProbe, c.ReadinessProbe, c.StartupProbe, c.Lifecycle = nil, nil, nil, nil
		}
	}
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
