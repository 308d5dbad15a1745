package main

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

func stagePod(uid, node, img string, ready, deleting bool) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{UID: types.UID(uid)},
		Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Image: img}}}}
	if ready {
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
	}
	if deleting {
		p.DeletionTimestamp = &metav1.Time{}
	}
	return p
}

// Two nodes roll out with a budget of one: each stage's duration is what the events' times say, and
// the second delete is timed from the first new pod turning Ready.
func TestRolloutStages(t *testing.T) {
	var s stageRecorder
	at := func(ms int) time.Time { return time.Unix(0, 0).Add(time.Duration(ms) * time.Millisecond) }
	s.observe(stagePod("a", "n1", "old", true, false), false, at(0))
	s.observe(stagePod("b", "n2", "old", true, false), false, at(0))
	// n1: deleted at 100, gone at 1100; its new pod created 1200, bound 1250, Ready 2250.
	s.observe(stagePod("a", "n1", "old", true, true), false, at(100))
	s.observe(stagePod("a", "n1", "old", true, true), true, at(1100))
	s.observe(stagePod("c", "", "new", false, false), false, at(1200))
	s.observe(stagePod("c", "n1", "new", false, false), false, at(1250))
	s.observe(stagePod("c", "n1", "new", true, false), false, at(2250))
	// n2: deleted at 2350 (100 ms after c turned Ready), gone 3350; new pod 3500, bound 3550, Ready 4550.
	s.observe(stagePod("b", "n2", "old", true, true), false, at(2350))
	s.observe(stagePod("b", "n2", "old", true, true), true, at(3350))
	s.observe(stagePod("d", "", "new", false, false), false, at(3500))
	s.observe(stagePod("d", "n2", "new", false, false), false, at(3550))
	s.observe(stagePod("d", "n2", "new", true, false), false, at(4550))

	pods := make([]*podTimes, 0, len(s.pods))
	for _, p := range s.pods {
		pods = append(pods, p)
	}
	got := rolloutStages(pods, "new", 1)
	want := []struct {
		n    int
		mean time.Duration
	}{
		{2, time.Second},            // deleted -> gone.
		{2, 125 * time.Millisecond}, // gone -> created: 100 and 150 ms.
		{2, 50 * time.Millisecond},  // created -> bound.
		{2, time.Second},            // bound -> Ready.
		{1, 100 * time.Millisecond}, // Ready -> next delete.
	}
	for i, w := range want {
		if got[i].n != w.n || got[i].mean != w.mean {
			t.Errorf("%s: n %d mean %v, want n %d mean %v", got[i].name, got[i].n, got[i].mean, w.n, w.mean)
		}
	}
}

// Two pods cover two nodes: each stage's figures are what the events' times say, and the coverage is
// done 200 ms after the last pod turned Ready.
func TestCoverageStages(t *testing.T) {
	var s stageRecorder
	at := func(ms int) time.Time { return time.Unix(0, 0).Add(time.Duration(ms) * time.Millisecond) }
	// a: created 100, bound 150, Ready 1150; b: created 300, bound 400, Ready 1500.
	s.observe(stagePod("a", "", "img", false, false), false, at(100))
	s.observe(stagePod("a", "n1", "img", false, false), false, at(150))
	s.observe(stagePod("a", "n1", "img", true, false), false, at(1150))
	s.observe(stagePod("b", "", "img", false, false), false, at(300))
	s.observe(stagePod("b", "n2", "img", false, false), false, at(400))
	s.observe(stagePod("b", "n2", "img", true, false), false, at(1500))
	// A pod of another image is not part of this coverage.
	s.observe(stagePod("c", "n3", "other", true, false), false, at(50))

	pods := make([]*podTimes, 0, len(s.pods))
	for _, p := range s.pods {
		pods = append(pods, p)
	}
	got := coverageStages(pods, "img", at(0), at(1700))
	want := []struct {
		n         int
		mean, max time.Duration
	}{
		{2, 200 * time.Millisecond, 300 * time.Millisecond},   // start -> created: 100 and 300 ms.
		{2, 75 * time.Millisecond, 100 * time.Millisecond},    // created -> bound: 50 and 100 ms.
		{2, 1050 * time.Millisecond, 1100 * time.Millisecond}, // bound -> Ready: 1000 and 1100 ms.
		{2, 1325 * time.Millisecond, 1500 * time.Millisecond}, // start -> Ready: 1150 and 1500 ms.
		{1, 200 * time.Millisecond, 200 * time.Millisecond},   // last Ready -> done.
	}
	if len(got) != len(want) {
		t.Fatalf("got %d stages, want %d: %v", len(got), len(want), got)
	}
	for i, w := range want {
		if got[i].n != w.n || got[i].mean != w.mean || got[i].max != w.max {
			t.Errorf("%s: n %d, mean %v, max %v; want %d, %v, %v", got[i].name, got[i].n, got[i].mean, got[i].max, w.n, w.mean, w.max)
		}
	}
}
