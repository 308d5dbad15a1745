package nodeagentset

import (
	"encoding/json"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/event"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
)

func TestCanaryDecisionChanged(t *testing.T) {
	set := func(decision, image string, generation int64) *nasv1alpha1.NodeAgentSet {
		s := &nasv1alpha1.NodeAgentSet{ObjectMeta: metav1.ObjectMeta{Generation: generation}}
		if decision != "" {
			s.Annotations = map[string]string{nasv1alpha1.CanaryDecisionAnnotation: decision}
		}
		s.Spec.Template.Spec.Containers = []corev1.Container{{Name: "a", Image: image}}
		return s
	}
	p := canaryDecisionChanged()
	if !p.Update(event.UpdateEvent{ObjectOld: set("", "a", 1), ObjectNew: set("promote:h:t", "a", 1)}) {
		t.Error("a new decision must wake the controller")
	}
	if p.Update(event.UpdateEvent{ObjectOld: set("promote:h:t", "a", 1), ObjectNew: set("promote:h:t", "a", 1)}) {
		t.Error("the same decision passes")
	}
}

func TestRevisionTemplates(t *testing.T) {
	set := &nasv1alpha1.NodeAgentSet{}
	set.Spec.Template.Spec.Containers = []corev1.Container{{Name: "agent", Image: "old"}}
	patch, err := templatePatch(set)
	if err != nil {
		t.Fatal(err)
	}
	old := &appsv1.ControllerRevision{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{nasv1alpha1.ControllerRevisionHashLabel: "h1"}}}
	old.Data.Raw = patch
	history := &revisions{old: []*appsv1.ControllerRevision{old}}
	if got := revisionTemplates(set, history); got != nil {
		t.Fatalf("without a canary: %v", got)
	}
	set.Spec.UpdateStrategy.RollingUpdate = &nasv1alpha1.RollingUpdateNodeAgentSet{Canary: &nasv1alpha1.CanaryStrategy{}}
	got := revisionTemplates(set, history)
	if tmpl := got["h1"]; tmpl == nil || tmpl.Spec.Containers[0].Image != "old" {
		raw, _ := json.Marshal(got)
		t.Fatalf("templates %s", raw)
	}
}
