package plugin

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
)

func revisionData(t *testing.T, set *nasv1alpha1.NodeAgentSet) *appsv1.ControllerRevision {
	t.Helper()
	data, err := templatePatch(set)
	if err != nil {
		t.Fatal(err)
	}
	return &appsv1.ControllerRevision{Data: runtime.RawExtension{Raw: data}, Revision: 1}
}

func TestRevisionsRestoreTemplateAndOverrides(t *testing.T) {
	plain := &nasv1alpha1.NodeAgentSet{ObjectMeta: metav1.ObjectMeta{Name: "agent"}, Spec: nasv1alpha1.NodeAgentSetSpec{
		Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "agent", Image: "v1"}}}},
	}}
	withGPU := plain.DeepCopy()
	withGPU.Spec.Template.Spec.Containers[0].Image = "v2"
	withGPU.Spec.NodeOverrides = []nasv1alpha1.NodeOverride{{
		Name:         "gpu",
		NodeSelector: metav1.LabelSelector{MatchLabels: map[string]string{"gpu": "true"}},
		Containers:   []nasv1alpha1.ContainerOverride{{Name: "agent", Image: "v2-cuda"}},
	}}
	editedGPU := withGPU.DeepCopy()
	editedGPU.Spec.NodeOverrides[0].Containers[0].Image = "v3-cuda"

	cases := []struct {
		name        string
		current     *nasv1alpha1.NodeAgentSet
		revision    *nasv1alpha1.NodeAgentSet
		wantMatches bool
	}{
		{"back to a revision without overrides removes them", withGPU, plain, false},
		{"back to a revision with overrides restores them", plain, withGPU, false},
		{"an edit of one override is undone", editedGPU, withGPU, false},
		{"the current revision matches", withGPU, withGPU, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cr := revisionData(t, tc.revision)
			applied, err := applyRevision(tc.current, cr)
			if err != nil {
				t.Fatal(err)
			}
			if applied.Spec.Template.Spec.Containers[0].Image != tc.revision.Spec.Template.Spec.Containers[0].Image {
				t.Errorf("template image %s, want the revision's", applied.Spec.Template.Spec.Containers[0].Image)
			}
			if len(applied.Spec.NodeOverrides) != len(tc.revision.Spec.NodeOverrides) ||
				(len(applied.Spec.NodeOverrides) > 0 &&
					applied.Spec.NodeOverrides[0].Containers[0].Image != tc.revision.Spec.NodeOverrides[0].Containers[0].Image) {
				t.Errorf("overrides %+v, want the revision's %+v", applied.Spec.NodeOverrides, tc.revision.Spec.NodeOverrides)
			}
			matches, err := matchesRevision(tc.current, cr)
			if err != nil || matches != tc.wantMatches {
				t.Errorf("matchesRevision = %v, %v; want %v", matches, err, tc.wantMatches)
			}
		})
	}
}
