package nodeagentset

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
)

func TestStripNodeKeepsWhatPlacementReads(t *testing.T) {
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "n", Labels: map[string]string{"gpu": "true"},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubelet"}}},
		Spec: corev1.NodeSpec{Taints: []corev1.Taint{{Key: "k", Effect: corev1.TaintEffectNoSchedule}}},
		Status: corev1.NodeStatus{
			Conditions:   []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}},
			Images:       []corev1.ContainerImage{{Names: []string{"registry.k8s.io/pause:3.10"}}},
			VolumesInUse: []corev1.UniqueVolumeName{"v"},
		},
	}
	out, err := stripNode(node)
	if err != nil {
		t.Fatal(err)
	}
	got := out.(*corev1.Node)
	if got.Status.Images != nil || got.Status.VolumesInUse != nil || got.ManagedFields != nil {
		t.Errorf("not stripped: %+v", got)
	}
	if got.Labels["gpu"] != "true" || len(got.Spec.Taints) != 1 || len(got.Status.Conditions) != 1 {
		t.Errorf("stripped too much: %+v", got)
	}
}

func controllerRef(apiVersion, kind string) []metav1.OwnerReference {
	return []metav1.OwnerReference{{APIVersion: apiVersion, Kind: kind, Name: "owner", UID: "owner-uid", Controller: ptr.To(true)}}
}

func fullPod(owners []metav1.OwnerReference) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: "uid", ResourceVersion: "42",
			Labels: map[string]string{"app": "agent"}, Annotations: map[string]string{"a": "b"}, OwnerReferences: owners,
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubelet"}}},
		Spec: corev1.PodSpec{NodeName: "node-a", Tolerations: []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
			Volumes: []corev1.Volume{{Name: "v"}},
			Containers: []corev1.Container{{Name: "c", Image: "i", Ports: []corev1.ContainerPort{{HostPort: 9100}},
				Env: []corev1.EnvVar{{Name: "E", Value: "v"}}, Command: []string{"agent"}, VolumeMounts: []corev1.VolumeMount{{Name: "v"}}}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning},
	}
}

func TestStripPodKeepsWhatTheControllerReadsOfTheSetsPodsAndOrphans(t *testing.T) {
	for name, tc := range map[string]struct {
		owners []metav1.OwnerReference
		whole  bool
	}{
		"controlled by a NodeAgentSet": {owners: controllerRef(nasv1alpha1.GroupVersion.String(), "NodeAgentSet")},
		"orphan":                       {whole: true},
	} {
		t.Run(name, func(t *testing.T) {
			out, err := stripPod(fullPod(tc.owners))
			if err != nil {
				t.Fatal(err)
			}
			got := out.(*corev1.Pod)
			if got.ManagedFields != nil {
				t.Errorf("managedFields kept")
			}
			c := got.Spec.Containers[0]
			if got.Spec.NodeName != "node-a" || len(got.Spec.Tolerations) != 1 || got.Status.Phase != corev1.PodRunning ||
				got.Labels["app"] != "agent" || c.Name != "c" || c.Image != "i" || len(c.Ports) != 1 {
				t.Errorf("a pod the controller reads lost fields: %+v", got)
			}
			kept := got.Spec.Volumes != nil || c.Env != nil || c.Command != nil || c.VolumeMounts != nil
			if kept != tc.whole {
				t.Errorf("volumes, env, command and mounts kept = %v, want %v", kept, tc.whole)
			}
		})
	}
}

func TestStripPodCutsOtherControllersPodsToAStub(t *testing.T) {
	out, err := stripPod(fullPod(controllerRef("apps/v1", "ReplicaSet")))
	if err != nil {
		t.Fatal(err)
	}
	got := out.(*corev1.Pod)
	if got.Name != "p" || got.Namespace != "ns" || got.UID != "uid" || got.ResourceVersion != "42" || len(got.OwnerReferences) != 1 {
		t.Errorf("the stub lost its identity: %+v", got.ObjectMeta)
	}
	if got.Labels != nil || got.Annotations != nil || got.ManagedFields != nil ||
		got.Spec.NodeName != "" || len(got.Spec.Containers) != 0 || got.Status.Phase != "" {
		t.Errorf("not stripped: %+v", got)
	}
	if setController(got) != nil || metav1.GetControllerOf(got) == nil {
		t.Errorf("the stub must still read as controlled by another controller")
	}
}

func TestStripRevisionDropsOnlyOtherControllersData(t *testing.T) {
	data := runtime.RawExtension{Raw: []byte(`{"spec":{}}`)}
	for name, tc := range map[string]struct {
		owners   []metav1.OwnerReference
		keepData bool
	}{
		"controlled by a NodeAgentSet": {owners: controllerRef(nasv1alpha1.GroupVersion.String(), "NodeAgentSet"), keepData: true},
		"orphan":                       {keepData: true},
		"a DaemonSet's":                {owners: controllerRef("apps/v1", "DaemonSet")},
	} {
		t.Run(name, func(t *testing.T) {
			cr := &appsv1.ControllerRevision{ObjectMeta: metav1.ObjectMeta{Name: "r", Labels: map[string]string{"app": "agent"},
				OwnerReferences: tc.owners, ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "m"}}}, Data: data}
			out, err := stripRevision(cr)
			if err != nil {
				t.Fatal(err)
			}
			got := out.(*appsv1.ControllerRevision)
			if (got.Data.Raw != nil) != tc.keepData {
				t.Errorf("data kept = %v, want %v", got.Data.Raw != nil, tc.keepData)
			}
			if got.ManagedFields != nil || got.Labels["app"] != "agent" {
				t.Errorf("managedFields kept or labels lost: %+v", got.ObjectMeta)
			}
		})
	}
}
