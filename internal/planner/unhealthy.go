package planner

// Unhealthy nodes and the rolling update (docs/design/unhealthy-nodes.md).
//
// Invariants:
//   - With unhealthyNodePolicy Count (the default) nothing here changes a plan: unhealthy nodes count
//     against the budget as upstream counts them.
//   - With Skip, an unhealthy node the rollout has not touched since it broke is skipped: the rolling
//     update neither deletes nor creates on it, it does not count against maxUnavailable or maxSurge,
//     and the rollout's target leaves it out, so the rollout completes without it. Manage (rules
//     21-27) still treats it as any node: a node without a pod gets one.
//   - Whether the rollout touched the node before it broke is read from the world alone: a live pod of
//     the current template created, or a pod's deletion requested, before the node broke.
//   - A skipped node is back in the budget as soon as it is healthy.
//   - A pod the kubelet terminated for a node shutdown stays, and holds its node's replacement, while
//     the node is not Ready, whatever the policy.

import (
	"time"

	corev1 "k8s.io/api/core/v1"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
)

// UnhealthyGracePeriod is how long a node's Ready condition must have been other than True for the
// node to count as unhealthy: a kubelet that misses a heartbeat or two is not a dead node.
const UnhealthyGracePeriod = 30 * time.Second

// healthTaints are the taints that make a node unhealthy at once, whatever its Ready condition.
var healthTaints = map[string]bool{
	corev1.TaintNodeUnreachable:  true,
	corev1.TaintNodeNotReady:     true,
	corev1.TaintNodeOutOfService: true,
}

// IsHealthTaint reports whether a taint key is one that makes a node unhealthy at once: unreachable,
// not-ready, out-of-service.
func IsHealthTaint(key string) bool {
	return healthTaints[key]
}

// nodeHealth is whether a node is unhealthy and, if so, since when.
type nodeHealth struct {
	unhealthy bool
	// brokeAt is when the node broke: its Ready condition's last transition when it is not True, else
	// the earliest timeAdded of its health taints; zero when no time is known.
	brokeAt time.Time
	// taint is the first health taint the node carries; nil when none.
	taint *corev1.Taint
}

// healthOf says whether the node is unhealthy at now.
func healthOf(node *corev1.Node, now time.Time) nodeHealth {
	var h nodeHealth
	for i := range node.Spec.Taints {
		t := &node.Spec.Taints[i]
		if !healthTaints[t.Key] {
			continue
		}
		h.unhealthy = true
		if h.taint == nil {
			h.taint = t
		}
		if t.TimeAdded != nil && (h.brokeAt.IsZero() || t.TimeAdded.Time.Before(h.brokeAt)) {
			h.brokeAt = t.TimeAdded.Time
		}
	}
	for _, c := range node.Status.Conditions {
		if c.Type != corev1.NodeReady || c.Status == corev1.ConditionTrue {
			continue
		}
		h.brokeAt = c.LastTransitionTime.Time
		if !c.LastTransitionTime.Add(UnhealthyGracePeriod).After(now) {
			h.unhealthy = true
		}
	}
	return h
}

// skipsUnhealthyNodes: the rolling update leaves unhealthy nodes out (unhealthyNodePolicy Skip).
func skipsUnhealthyNodes(set *nasv1alpha1.NodeAgentSet) bool {
	ru := set.Spec.UpdateStrategy.RollingUpdate
	return set.Spec.UpdateStrategy.Type != nasv1alpha1.OnDeleteStrategyType && ru != nil &&
		ru.UnhealthyNodePolicy == nasv1alpha1.UnhealthyNodeSkip
}

// skippedNodes returns the nodes outside the partition that the rolling update skips, each with its
// reason (ReasonSkippedUnhealthy): unhealthy, eligible or keeping their pods (an untolerated
// unreachable or not-ready NoSchedule taint only stops new pods), not touched by the rollout before
// they broke, and not already running an available pod of the current template alone.
func (w *world) skippedNodes() map[string]NodeReason {
	if !skipsUnhealthyNodes(w.in.Set) {
		return nil
	}
	var out map[string]NodeReason
	for _, v := range w.nodes {
		keeps := v.placement.ShouldContinueRunning && len(v.pods) > 0
		if v.node == nil || w.partitioned[v.name] || (!v.placement.ShouldRun && !keeps) {
			continue
		}
		h := healthOf(v.node, w.in.Now)
		if !h.unhealthy || w.touchedBefore(v, h.brokeAt) {
			continue
		}
		if newPod, oldPod, _ := w.updatedPods(v); newPod != nil && oldPod == nil &&
			IsPodAvailable(newPod, w.in.Set.Spec.MinReadySeconds, w.in.Now) {
			continue
		}
		if out == nil {
			out = map[string]NodeReason{}
		}
		out[v.name] = NodeReason{Code: ReasonSkippedUnhealthy, Taint: h.taint, Since: h.brokeAt}
	}
	return out
}

// requeueUnhealthy asks for a pass when a node that is not Ready passes the grace period and becomes
// unhealthy: nothing else announces it.
func (w *world) requeueUnhealthy(req *requeue) {
	if !skipsUnhealthyNodes(w.in.Set) {
		return
	}
	for _, v := range w.nodes {
		if v.node == nil || (!v.placement.ShouldRun && len(v.pods) == 0) {
			continue
		}
		for _, c := range v.node.Status.Conditions {
			if at := c.LastTransitionTime.Add(UnhealthyGracePeriod); c.Type == corev1.NodeReady && c.Status != corev1.ConditionTrue && at.After(w.in.Now) {
				req.at(at)
			}
		}
	}
}

// touchedBefore: the rollout acted on the node before t: a live pod of the current template was
// created, or a pod's deletion was requested, before t.
func (w *world) touchedBefore(v *nodeView, t time.Time) bool {
	for i, pod := range v.pods {
		switch {
		case isTerminating(pod):
			if deleteRequestedAt(pod).Before(t) {
				return true
			}
		case w.updated(v, i) && pod.CreationTimestamp.Time.Before(t):
			return true
		}
	}
	return false
}

// deleteRequestedAt is when the pod's deletion was asked for: its deletionTimestamp less its grace
// period.
func deleteRequestedAt(pod *corev1.Pod) time.Time {
	at := pod.DeletionTimestamp.Time
	if g := pod.DeletionGracePeriodSeconds; g != nil {
		at = at.Add(-time.Duration(*g) * time.Second)
	}
	return at
}

// backAt is, with unhealthyNodePolicy Skip, when a node that still runs only an old pod last became
// Ready: a node back from being skipped restarts the rollout's clock, since the rollout could not touch
// it before. Zero otherwise.
func (w *world) backAt(v *nodeView, newPod, oldPod *corev1.Pod) time.Time {
	if !skipsUnhealthyNodes(w.in.Set) || oldPod == nil || newPod != nil {
		return time.Time{}
	}
	if back := nodeReadySince(v.node); !back.After(w.in.Now) {
		return back
	}
	return time.Time{}
}

// nodeReadySince is when the node's Ready condition last turned True; zero when it is not True or has no
// time.
func nodeReadySince(node *corev1.Node) time.Time {
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
			return c.LastTransitionTime.Time
		}
	}
	return time.Time{}
}

// Graceful node shutdown.

// shutDownByKubelet: the pod failed because its kubelet terminated it for a node shutdown
// (condition DisruptionTarget, reason TerminationByKubelet).
func shutDownByKubelet(pod *corev1.Pod) bool {
	if pod.Status.Phase != corev1.PodFailed {
		return false
	}
	c := podCondition(pod, corev1.DisruptionTarget)
	return c != nil && c.Status == corev1.ConditionTrue && c.Reason == corev1.PodReasonTerminationByKubelet
}

// keptForShutdown: the pod was terminated by its kubelet for a node shutdown and the node is down
// (nodeDown): it stays, and nothing replaces it, until the node is back. Deleting it would only create
// a pod that the shutting-down (or shut) node fails again.
func keptForShutdown(pod *corev1.Pod, node *corev1.Node) bool {
	return node != nil && !isTerminating(pod) && shutDownByKubelet(pod) && nodeDown(node)
}

// nodeDown: the node's Ready condition is not True, or it carries a health taint (unreachable,
// not-ready, out-of-service: the last is how an administrator says a node is shut down).
func nodeDown(node *corev1.Node) bool {
	if !nodeReady(node) {
		return true
	}
	for _, t := range node.Spec.Taints {
		if healthTaints[t.Key] {
			return true
		}
	}
	return false
}

// holdsShutdownPod: the node keeps a pod terminated for its shutdown (keptForShutdown).
func holdsShutdownPod(v *nodeView) bool {
	for _, pod := range v.pods {
		if keptForShutdown(pod, v.node) {
			return true
		}
	}
	return false
}
