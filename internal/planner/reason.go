package planner

import (
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// PodProblem says, as data, what keeps an agent pod from being available, most specific cause first.
// A nil pod is ReasonNoPod.
func PodProblem(pod *corev1.Pod, node *corev1.Node) NodeReason {
	switch {
	case pod == nil:
		return NodeReason{Code: ReasonNoPod}
	case isTerminating(pod):
		return NodeReason{Code: ReasonPodTerminating}
	case keptForShutdown(pod, node):
		return NodeReason{Code: ReasonNodeShutdown, Message: pod.Status.Reason}
	case pod.Status.Phase == corev1.PodFailed:
		return NodeReason{Code: ReasonPodFailed, Message: pod.Status.Reason}
	case pod.Status.Phase == corev1.PodSucceeded:
		return NodeReason{Code: ReasonPodSucceeded}
	}
	if c := podCondition(pod, corev1.PodScheduled); c != nil && c.Status == corev1.ConditionFalse {
		if resources := insufficientResources(c.Message); len(resources) > 0 {
			return NodeReason{Code: ReasonInsufficientResources, Resources: resources, SchedulerReason: c.Reason, Message: c.Message}
		}
		return NodeReason{Code: ReasonUnschedulable, SchedulerReason: c.Reason, Message: c.Message}
	}
	if node != nil && !nodeReady(node) {
		return NodeReason{Code: ReasonNodeNotReady}
	}
	for _, statuses := range [][]corev1.ContainerStatus{pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses} {
		for _, cs := range statuses {
			if w := cs.State.Waiting; w != nil && w.Reason != "" && w.Reason != "ContainerCreating" && w.Reason != "PodInitializing" {
				return waitingReason(cs.Name, w.Reason, cs.RestartCount)
			}
		}
	}
	switch {
	case pod.Spec.NodeName == "":
		return NodeReason{Code: ReasonNotScheduled}
	case pod.Status.Phase == corev1.PodPending:
		return NodeReason{Code: ReasonPodStarting}
	case !IsPodReady(pod):
		return NodeReason{Code: ReasonPodNotReady}
	default:
		return NodeReason{Code: ReasonMinReadySeconds}
	}
}

// imagePullReasons are the kubelet's waiting reasons for an image that cannot be pulled.
var imagePullReasons = map[string]bool{
	"ImagePullBackOff": true, "ErrImagePull": true, "InvalidImageName": true, "ErrImageNeverPull": true, "RegistryUnavailable": true,
}

func waitingReason(container, reason string, restarts int32) NodeReason {
	r := NodeReason{Code: ReasonContainerWaiting, Container: container, WaitingReason: reason, Restarts: restarts}
	switch {
	case imagePullReasons[reason]:
		r.Code = ReasonImagePull
	case reason == "CrashLoopBackOff":
		r.Code = ReasonCrashLoop
	}
	return r
}

// Outdated reports whether the code is one of an eligible node whose available pod is of an older
// template: the node counts as available.
func (c ReasonCode) Outdated() bool {
	switch c {
	case ReasonPartitioned, ReasonPaused, ReasonOnDelete, ReasonWaitingForBudget, ReasonSkippedUnhealthy, ReasonWaitingForCanary,
		ReasonCanaryRolledBack:
		return true
	}
	return false
}

// nodeReason is why an eligible node's pod (nil: none) is not available: PodProblem, refined by what
// only the plan knows (the template verdict for a node without a pod, the backoff of a failed pod).
func (w *world) nodeReason(v *nodeView, pod *corev1.Pod) NodeReason {
	if pod == nil {
		switch w.in.Template.State {
		case TemplateRejected:
			return NodeReason{Code: ReasonTemplateRejected, Message: w.in.Template.Message}
		case TemplateServiceAccountMissing:
			return NodeReason{Code: ReasonServiceAccountMissing, Message: w.in.Template.Message}
		}
		return NodeReason{Code: ReasonNoPod}
	}
	r := PodProblem(pod, v.node)
	switch r.Code {
	case ReasonPodFailed:
		if until, ok := w.backoffUntil(v); ok {
			r.Code, r.Until = ReasonFailedBackoff, until
		}
	case ReasonMinReadySeconds:
		r.Until = availableAt(pod, w.in.Set.Spec.MinReadySeconds)
	}
	return r
}

// outdatedReason is why an eligible node's available pod of an older template is still there.
func (w *world) outdatedReason(v *nodeView) NodeReason {
	switch {
	case !w.strategy.rollingUpdate:
		return NodeReason{Code: ReasonOnDelete}
	case w.strategy.paused:
		return NodeReason{Code: ReasonPaused}
	case v.held:
		return NodeReason{Code: ReasonWaitingForCanary}
	case v.target != "":
		return NodeReason{Code: ReasonCanaryRolledBack}
	case w.partitioned[v.name]:
		return NodeReason{Code: ReasonPartitioned}
	case w.skipped[v.name].Code != "":
		return w.skipped[v.name]
	default:
		return NodeReason{Code: ReasonWaitingForBudget}
	}
}

// backoffUntil is when the backoff of the node's failed pod ends, if it has not ended at Now.
func (w *world) backoffUntil(v *nodeView) (time.Time, bool) {
	until, ok := w.in.FailedPodBackoffUntil[v.name]
	if !ok || !w.in.Now.Before(until) {
		return time.Time{}, false
	}
	return until, true
}

// inBackoff: the node has a failed pod whose deletion and replacement wait for the backoff.
func (w *world) inBackoff(v *nodeView) bool {
	if _, ok := w.backoffUntil(v); !ok {
		return false
	}
	for _, pod := range v.pods {
		if pod.Status.Phase == corev1.PodFailed && !isTerminating(pod) {
			return true
		}
	}
	return false
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

// insufficientResources lists the resources a scheduler's message says the node lacks ("0/3 nodes are
// available: 1 Insufficient cpu, 1 Insufficient memory, 2 node(s) didn't match ..."): cpu, memory,
// ephemeral-storage, an extended resource, or pods ("Too many pods"). Empty for other messages.
func insufficientResources(message string) []string {
	var out []string
	add := func(r string) {
		if r != "" && !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	rest := message
	for {
		i := strings.Index(rest, "Insufficient ")
		if i < 0 {
			break
		}
		rest = rest[i+len("Insufficient "):]
		end := strings.IndexAny(rest, ",.;: ")
		if end < 0 {
			end = len(rest)
		}
		// A resource name may contain dots ("example.com/gpu"); only a dot that ends the word ends it.
		for end < len(rest) && rest[end] == '.' && end+1 < len(rest) && rest[end+1] != ' ' {
			next := strings.IndexAny(rest[end+1:], ",.;: ")
			if next < 0 {
				end = len(rest)
				break
			}
			end += 1 + next
		}
		add(rest[:end])
	}
	if strings.Contains(message, "Too many pods") {
		add("pods")
	}
	return out
}
