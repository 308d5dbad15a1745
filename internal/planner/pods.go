package planner

import (
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
)

// isTerminal: the pod will not run again.
func isTerminal(pod *corev1.Pod) bool {
	return pod.Status.Phase == corev1.PodFailed || pod.Status.Phase == corev1.PodSucceeded
}

// isTerminating: someone has asked for the pod to go.
func isTerminating(pod *corev1.Pod) bool {
	return pod.DeletionTimestamp != nil
}

// readyCondition returns the pod's Ready condition, or nil.
func readyCondition(pod *corev1.Pod) *corev1.PodCondition {
	return podCondition(pod, corev1.PodReady)
}

// IsPodReady reports whether the Ready condition is True.
func IsPodReady(pod *corev1.Pod) bool {
	return conditionTrue(readyCondition(pod))
}

// IsPodAvailable reports whether the pod is Ready, and has been Ready for at least minReadySeconds at now.
func IsPodAvailable(pod *corev1.Pod, minReadySeconds int32, now time.Time) bool {
	return readyAvailable(readyCondition(pod), minReadySeconds, now)
}

// availableAt is when a Ready pod becomes available; zero when it is not Ready, or has no transition
// time and so never becomes available by waiting (see IsPodAvailable).
func availableAt(pod *corev1.Pod, minReadySeconds int32) time.Time {
	return readyAvailableAt(readyCondition(pod), minReadySeconds)
}

// conditionTrue, readyAvailable and readyAvailableAt are IsPodReady, IsPodAvailable and availableAt
// of a pod whose Ready condition is c (nil: none).
func conditionTrue(c *corev1.PodCondition) bool {
	return c != nil && c.Status == corev1.ConditionTrue
}

func readyAvailable(c *corev1.PodCondition, minReadySeconds int32, now time.Time) bool {
	if !conditionTrue(c) {
		return false
	}
	if minReadySeconds == 0 {
		return true
	}
	return !c.LastTransitionTime.IsZero() && !c.LastTransitionTime.Add(time.Duration(minReadySeconds)*time.Second).After(now)
}

func readyAvailableAt(c *corev1.PodCondition, minReadySeconds int32) time.Time {
	if !conditionTrue(c) || c.LastTransitionTime.IsZero() {
		return time.Time{}
	}
	return c.LastTransitionTime.Add(time.Duration(minReadySeconds) * time.Second)
}

// IsPodUpdated reports whether the pod carries the current revision hash (rule 43). An empty hash matches nothing.
func IsPodUpdated(pod *corev1.Pod, hash string) bool {
	return hash != "" && pod.Labels[nasv1alpha1.ControllerRevisionHashLabel] == hash
}

// SortOldestFirst orders pods as upstream's podByCreationTimestampAndPhase does (rule 23): bound before
// unbound, then older first, then by name.
func SortOldestFirst(pods []*corev1.Pod) {
	if len(pods) < 2 {
		return
	}
	slices.SortStableFunc(pods, compareOldestFirst)
}

func compareOldestFirst(a, b *corev1.Pod) int {
	if aBound, bBound := a.Spec.NodeName != "", b.Spec.NodeName != ""; aBound != bBound {
		if aBound {
			return -1
		}
		return 1
	}
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		if a.CreationTimestamp.Before(&b.CreationTimestamp) {
			return -1
		}
		return 1
	}
	return strings.Compare(a.Name, b.Name)
}
