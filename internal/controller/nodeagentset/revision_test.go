package nodeagentset

import (
	"encoding/json"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/strategicpatch"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
)

func rev(name string, number int64, hash string) *appsv1.ControllerRevision {
	return &appsv1.ControllerRevision{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{nasv1alpha1.ControllerRevisionHashLabel: hash}},
		Revision:   number,
	}
}

func podWithHash(hash string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{nasv1alpha1.ControllerRevisionHashLabel: hash}}}
}

func names(crs []*appsv1.ControllerRevision) []string {
	out := make([]string, 0, len(crs))
	for _, cr := range crs {
		out = append(out, cr.Name)
	}
	return out
}

func TestTemplatePatchRestoresTheTemplate(t *testing.T) {
	set := &nasv1alpha1.NodeAgentSet{Spec: nasv1alpha1.NodeAgentSetSpec{Template: corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "agent"}},
		Spec:       corev1.PodSpec{HostNetwork: true, Containers: []corev1.Container{{Name: "agent", Image: "v1"}}},
	}}}
	patch, err := templatePatch(set)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := templatePatch(set.DeepCopy())
	if string(patch) != string(again) {
		t.Fatal("the patch of equal templates differs: revisions would not be found again")
	}

	// Applied to a set with another template, the patch brings the revision's template back whole.
	changed := set.DeepCopy()
	changed.Spec.Template.Spec.HostNetwork = false
	changed.Spec.Template.Spec.Containers = append(changed.Spec.Template.Spec.Containers, corev1.Container{Name: "extra", Image: "x"})
	current, err := json.Marshal(changed)
	if err != nil {
		t.Fatal(err)
	}
	restored, err := strategicpatch.StrategicMergePatch(current, patch, &nasv1alpha1.NodeAgentSet{})
	if err != nil {
		t.Fatal(err)
	}
	var got nasv1alpha1.NodeAgentSet
	if err := json.Unmarshal(restored, &got); err != nil {
		t.Fatal(err)
	}
	if !got.Spec.Template.Spec.HostNetwork || len(got.Spec.Template.Spec.Containers) != 1 || got.Spec.Template.Spec.Containers[0].Image != "v1" {
		t.Errorf("template not restored: %+v", got.Spec.Template.Spec)
	}
}

func TestPickCurrentKeepsTheHighestRevision(t *testing.T) {
	keep, dups := pickCurrent([]*appsv1.ControllerRevision{rev("a", 3, "a"), rev("b", 5, "b"), rev("c", 4, "c")})
	if keep.Name != "b" || len(dups) != 2 {
		t.Errorf("kept %s, dups %v; want b and [a c]", keep.Name, names(dups))
	}
	// On ties the last one listed wins, as upstream.
	keep, _ = pickCurrent([]*appsv1.ControllerRevision{rev("a", 5, "a"), rev("b", 5, "b")})
	if keep.Name != "b" {
		t.Errorf("tie kept %s, want b", keep.Name)
	}
}

func TestRevisionsToPrune(t *testing.T) {
	old := []*appsv1.ControllerRevision{rev("r3", 3, "h3"), rev("r1", 1, "h1"), rev("r2", 2, "h2"), rev("r4", 4, "h4")}
	cases := []struct {
		name  string
		limit int32
		pods  []*corev1.Pod
		want  []string
	}{
		{"within the limit", 4, nil, nil},
		{"oldest first", 2, nil, []string{"r1", "r2"}},
		{"never one a pod still runs", 2, []*corev1.Pod{podWithHash("h1")}, []string{"r2", "r3"}},
		{"limit 0 keeps only revisions in use", 0, []*corev1.Pod{podWithHash("h3")}, []string{"r1", "r2", "r4"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := names(revisionsToPrune(old, tc.limit, tc.pods))
			if len(got) != len(tc.want) {
				t.Fatalf("pruned %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("pruned %v, want %v", got, tc.want)
				}
			}
		})
	}
}

func TestStampRollout(t *testing.T) {
	now := time.Date(2026, 11, 22, 7, 0, 0, 0, time.UTC)
	cr := rev("r", 1, "h")
	if !stampRollout(cr, 3, now) {
		t.Fatal("first stamp reported no change")
	}
	if stampRollout(cr, 3, now.Add(time.Hour)) {
		t.Error("restamped for the same generation")
	}
	h := revisions{current: cr}
	if got := h.rolloutStartedAt(); !got.Equal(now) {
		t.Errorf("rolloutStartedAt = %v, want %v", got, now)
	}
	if !stampRollout(cr, 4, now.Add(time.Hour)) || !h.rolloutStartedAt().Equal(now.Add(time.Hour)) {
		t.Error("a new generation did not restart the clock")
	}
}

func TestTemplatePatchCarriesTheOverrides(t *testing.T) {
	set := &nasv1alpha1.NodeAgentSet{Spec: nasv1alpha1.NodeAgentSetSpec{Template: corev1.PodTemplateSpec{
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "agent", Image: "v1"}}},
	}}}
	plain, err := templatePatch(set)
	if err != nil {
		t.Fatal(err)
	}
	// Without overrides the data is exactly the template patch, as before overrides existed.
	want := `{"spec":{"template":{"$patch":"replace","metadata":{},"spec":{"containers":[{"image":"v1","name":"agent","resources":{}}]}}}}`
	if string(plain) != want {
		t.Errorf("data without overrides = %s, want %s", plain, want)
	}
	set.Spec.NodeOverrides = []nasv1alpha1.NodeOverride{{Name: "gpu", Containers: []nasv1alpha1.ContainerOverride{{Name: "agent", Image: "v2"}}}}
	with, err := templatePatch(set)
	if err != nil {
		t.Fatal(err)
	}
	var data struct {
		Spec struct {
			NodeOverrides []nasv1alpha1.NodeOverride `json:"nodeOverrides"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(with, &data); err != nil {
		t.Fatal(err)
	}
	if len(data.Spec.NodeOverrides) != 1 || data.Spec.NodeOverrides[0].Containers[0].Image != "v2" {
		t.Errorf("data with overrides = %s, want the overrides next to the template", with)
	}
	if again, _ := templatePatch(set.DeepCopy()); string(again) != string(with) {
		t.Error("equal sets gave different revision data")
	}
}
