package planner

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestPodProblem(t *testing.T) {
	readyNode := newNode("n", nil)
	notReadyNode := newNode("n", nil, withNodeCondition(corev1.NodeReady, corev1.ConditionFalse))
	waiting := func(reason string) func(*corev1.Pod) {
		return func(p *corev1.Pod) {
			p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "agent", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason}}}}
		}
	}
	unschedulable := func(p *corev1.Pod) {
		p.Spec.NodeName = ""
		p.Status.Phase = corev1.PodPending
		p.Status.Conditions = []corev1.PodCondition{{
			Type: corev1.PodScheduled, Status: corev1.ConditionFalse,
			Reason: "Unschedulable", Message: "0/1 nodes are available: insufficient memory.",
		}}
	}
	tests := []struct {
		name string
		pod  *corev1.Pod
		node *corev1.Node
		want string
	}{
		{name: "no pod", node: readyNode, want: "no agent pod yet"},
		{name: "terminating", pod: newPod("p", "n", terminating, phase(corev1.PodFailed)), node: readyNode, want: "agent pod terminating"},
		{
			name: "failed with reason",
			pod:  newPod("p", "n", phase(corev1.PodFailed), func(p *corev1.Pod) { p.Status.Reason = "Evicted" }),
			node: readyNode, want: "agent pod failed (Evicted)",
		},
		{name: "failed without reason", pod: newPod("p", "n", phase(corev1.PodFailed)), node: readyNode, want: "agent pod failed"},
		{name: "succeeded", pod: newPod("p", "n", phase(corev1.PodSucceeded)), node: readyNode, want: "agent pod exited"},
		{
			name: "unschedulable", pod: newPod("p", "", unschedulable), node: readyNode,
			want: "agent pod pending: Unschedulable (0/1 nodes are available: insufficient memory.)",
		},
		{name: "node not ready", pod: newPod("p", "n"), node: notReadyNode, want: "node not ready"},
		{name: "crash loop", pod: newPod("p", "n", waiting("CrashLoopBackOff")), node: readyNode, want: "container agent: CrashLoopBackOff"},
		{name: "image pull", pod: newPod("p", "n", waiting("ImagePullBackOff")), node: readyNode, want: "container agent: ImagePullBackOff"},
		{
			name: "creating is not a problem yet",
			pod:  newPod("p", "n", waiting("ContainerCreating"), phase(corev1.PodPending)), node: readyNode, want: "agent pod starting",
		},
		{name: "not scheduled yet", pod: newPod("p", "", phase(corev1.PodPending)), node: readyNode, want: "agent pod not scheduled yet"},
		{name: "running, not ready", pod: newPod("p", "n", notReady), node: readyNode, want: "agent pod not ready"},
		{name: "ready, not yet available", pod: newPod("p", "n", ready), node: readyNode, want: "agent pod ready for less than minReadySeconds"},
		{name: "unknown node is not blamed", pod: newPod("p", "n", notReady), want: "agent pod not ready"},
		{
			name: "a node without conditions counts as ready",
			pod:  newPod("p", "n", notReady), node: newNode("n", nil, func(n *corev1.Node) { n.Status.Conditions = nil }),
			want: "agent pod not ready",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := PodProblem(tt.pod, tt.node); got != tt.want {
				t.Errorf("PodProblem() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestNodeStateReason(t *testing.T) {
	excluded := NodeState{Placement: NewPlacer(&corev1.PodSpec{NodeSelector: map[string]string{"gpu": "true"}}).Place(newNode("n", nil))}
	if got := excluded.Reason(); got != "nodeSelector gpu=true does not match" {
		t.Errorf("excluded node reason = %q", got)
	}
	missing := NodeState{Placement: Placement{ShouldRun: true, ShouldContinueRunning: true}}
	if got := missing.Reason(); got != "no agent pod yet" {
		t.Errorf("empty node reason = %q", got)
	}
}

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
