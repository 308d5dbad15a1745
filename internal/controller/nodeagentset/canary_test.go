package nodeagentset

import (
	"encoding/json"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/event"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
	"github.com/nodeagentset/nodeagentset/internal/planner"
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

func TestOlderRevisions(t *testing.T) {
	set := &nasv1alpha1.NodeAgentSet{}
	set.Spec.Template.Spec.Containers = []corev1.Container{{Name: "agent", Image: "old"}}
	revision := func(hash string) *appsv1.ControllerRevision {
		patch, err := templatePatch(set)
		if err != nil {
			t.Fatal(err)
		}
		cr := &appsv1.ControllerRevision{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{nasv1alpha1.ControllerRevisionHashLabel: hash}}}
		cr.Data.Raw = patch
		return cr
	}
	plain := revision("h1")
	set.Spec.NodeOverrides = []nasv1alpha1.NodeOverride{{Name: "gpu", Containers: []nasv1alpha1.ContainerOverride{{Name: "agent", Image: "cuda"}}}}
	history := &revisions{old: []*appsv1.ControllerRevision{plain, revision("h2")}}
	if templates, overrides := olderRevisions(set, history); templates != nil || overrides != nil {
		t.Fatalf("without a canary: %v %v", templates, overrides)
	}
	set.Spec.UpdateStrategy.RollingUpdate = &nasv1alpha1.RollingUpdateNodeAgentSet{Canary: &nasv1alpha1.CanaryStrategy{}}
	templates, overrides := olderRevisions(set, history)
	for _, hash := range []string{"h1", "h2"} {
		if tmpl := templates[hash]; tmpl == nil || tmpl.Spec.Containers[0].Image != "old" {
			raw, _ := json.Marshal(templates)
			t.Fatalf("templates %s", raw)
		}
	}
	if _, ok := overrides["h1"]; ok || len(overrides["h2"]) != 1 || overrides["h2"][0].Containers[0].Image != "cuda" {
		t.Fatalf("overrides %+v: want h2's only", overrides)
	}
}

func TestRecordCanaryVerdict(t *testing.T) {
	canary := func(phase nasv1alpha1.CanaryPhase, nodes ...string) *nasv1alpha1.CanaryStatus {
		return &nasv1alpha1.CanaryStatus{Revision: "h2", Phase: phase, Nodes: nodes, Message: "words"}
	}
	tests := []struct {
		name       string
		prev, next *nasv1alpha1.CanaryStatus
		want       string
	}{
		{name: "failed", prev: canary(nasv1alpha1.CanaryWatching, "a"), next: canary(nasv1alpha1.CanaryFailed, "a"),
			want: "Warning CanaryFailed words"},
		{name: "already failed", prev: canary(nasv1alpha1.CanaryFailed, "a"), next: canary(nasv1alpha1.CanaryFailed, "a")},
		{name: "succeeded", prev: canary(nasv1alpha1.CanaryWatching, "a"), next: canary(nasv1alpha1.CanarySucceeded, "a"),
			want: "Normal CanarySucceeded words"},
		{name: "nothing to compare", next: canary(nasv1alpha1.CanarySucceeded)},
		{name: "waiting", prev: canary(nasv1alpha1.CanaryWatching, "a"), next: canary(nasv1alpha1.CanaryWaitingForPromotion, "a"),
			want: "Normal CanaryWaitingForPromotion words"},
		{name: "aborted", prev: canary(nasv1alpha1.CanaryWatching, "a"), next: canary(nasv1alpha1.CanaryAborted, "a"),
			want: "Warning CanaryAborted words"},
		{name: "watching", prev: canary(nasv1alpha1.CanaryProgressing, "a"), next: canary(nasv1alpha1.CanaryWatching, "a")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			recorder := events.NewFakeRecorder(10)
			r := NewReconciler(nil, nil, nil, recorder, clock.RealClock{})
			set := &nasv1alpha1.NodeAgentSet{Status: nasv1alpha1.NodeAgentSetStatus{Canary: tc.prev}}
			r.recordCanaryVerdict(set, planner.Plan{Canary: tc.next})
			close(recorder.Events)
			got := ""
			for e := range recorder.Events {
				got += e
			}
			if got != tc.want {
				t.Errorf("event %q, want %q", got, tc.want)
			}
		})
	}
}
