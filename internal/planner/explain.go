package planner

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Reason is a short, human-readable explanation of a NodeState, e.g. "taint dedicated=gpu:NoSchedule
// not tolerated", "no agent pod yet" or "container agent: CrashLoopBackOff". Nodes with the same
// cause get the same text, so status messages can group them.
func (s NodeState) Reason() string {
	if !s.Placement.ShouldRun && s.Placement.Exclusion != nil {
		return s.Placement.Exclusion.String()
	}
	return PodProblem(s.Pod, s.Node)
}

// PodProblem says what keeps an agent pod from being available, most specific cause first.
func PodProblem(pod *corev1.Pod, node *corev1.Node) string {
	switch {
	case pod == nil:
		return "no agent pod yet"
	case isTerminating(pod):
		return "agent pod terminating"
	case pod.Status.Phase == corev1.PodFailed:
		return "agent pod failed" + suffix(pod.Status.Reason)
	case pod.Status.Phase == corev1.PodSucceeded:
		return "agent pod exited"
	}
	if c := podCondition(pod, corev1.PodScheduled); c != nil && c.Status == corev1.ConditionFalse {
		return fmt.Sprintf("agent pod pending: %s%s", c.Reason, suffix(c.Message))
	}
	if node != nil && !nodeReady(node) {
		return "node not ready"
	}
	for _, statuses := range [][]corev1.ContainerStatus{pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses} {
		for _, cs := range statuses {
			if w := cs.State.Waiting; w != nil && w.Reason != "" && w.Reason != "ContainerCreating" && w.Reason != "PodInitializing" {
				return fmt.Sprintf("container %s: %s", cs.Name, w.Reason)
			}
		}
	}
	switch {
	case pod.Spec.NodeName == "":
		return "agent pod not scheduled yet"
	case pod.Status.Phase == corev1.PodPending:
		return "agent pod starting"
	case !IsPodReady(pod):
		return "agent pod not ready"
	default:
		return "agent pod ready for less than minReadySeconds"
	}
}

func podCondition(pod *corev1.Pod, t corev1.PodConditionType) *corev1.PodCondition {
	for i := range pod.Status.Conditions {
		if pod.Status.Conditions[i].Type == t {
			return &pod.Status.Conditions[i]
		}
	}
	return nil
}

// nodeReady: the node's Ready condition is True; a node that reports no conditions counts as ready.
func nodeReady(node *corev1.Node) bool {
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return true
}

func suffix(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return ""
	}
	return " (" + s + ")"
}
