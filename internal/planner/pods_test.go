package planner

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// TestIsPodUpdated is upstream's TestIsPodUpdated (3.3) without the template-generation cases
// (deliberate difference 4): updated iff the hash label equals a non-empty current hash.
func TestIsPodUpdated(t *testing.T) {
	tests := []struct {
		name   string
		labels map[string]string
		hash   string
		want   bool
	}{
		{name: "hash matches", labels: map[string]string{"controller-revision-hash": "abc"}, hash: "abc", want: true},
		{name: "hash differs", labels: map[string]string{"controller-revision-hash": "abc"}, hash: "def"},
		{name: "no hash label", labels: map[string]string{"name": "x"}, hash: "abc"},
		{name: "nil labels", hash: "abc"},
		{name: "empty current hash never matches", labels: map[string]string{"controller-revision-hash": ""}, hash: ""},
		{name: "empty current hash, pod without label", labels: map[string]string{}, hash: ""},
		{name: "a template generation label does not count", labels: map[string]string{"pod-template-generation": "2"}, hash: "abc"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := newPod("p", "n")
			pod.Labels = tt.labels
			if got := IsPodUpdated(pod, tt.hash); got != tt.want {
				t.Errorf("IsPodUpdated() = %t, want %t", got, tt.want)
			}
		})
	}
}

func TestIsPodAvailable(t *testing.T) {
	tests := []struct {
		name     string
		pod      *corev1.Pod
		minReady int32
		want     bool
	}{
		{name: "no Ready condition", pod: newPod("p", "n"), want: false},
		{name: "not Ready", pod: newPod("p", "n", notReady), want: false},
		{name: "Ready, minReadySeconds 0", pod: newPod("p", "n", readySince(t0)), want: true},
		{name: "Ready for less than minReadySeconds", pod: newPod("p", "n", readySince(t0.Add(-9e9))), minReady: 10, want: false},
		{name: "Ready for exactly minReadySeconds", pod: newPod("p", "n", readySince(t0.Add(-10e9))), minReady: 10, want: true},
		{name: "Ready without transition time and minReadySeconds", pod: newPod("p", "n", func(p *corev1.Pod) {
			p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
		}), minReady: 10, want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsPodAvailable(tt.pod, tt.minReady, t0); got != tt.want {
				t.Errorf("IsPodAvailable() = %t, want %t", got, tt.want)
			}
		})
	}
}
