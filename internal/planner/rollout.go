package planner

// The rolling update, rules 43-49 of the upstream DaemonSet controller.
//
// Invariants:
//   - maxUnavailable and maxSurge are scaled against the number of eligible nodes, rounding up; when
//     both come to 0 on a non-empty set, maxUnavailable is 1.
//   - Without surge (delete first): at most maxUnavailable eligible nodes lack an available pod
//     because of the update. Empty eligible nodes and new pods that are not available yet use up the
//     budget; old pods that are not available anyway are replaced outside it.
//   - With surge (create first): at most maxSurge nodes run a second, new pod that is not available
//     yet; an old pod goes only once the new pod on its node is available. Old pods that are not
//     available get their new pod at once, outside the budget. Old pods on nodes that stopped
//     qualifying are kept until enough pods are available elsewhere.
//   - Nodes are visited in name order, so which nodes are updated first is deterministic (upstream
//     uses Go map order).
//   - A change that leaves the template alone keeps the hash, so nothing is replaced.
//   - Beyond upstream: the last `partition` eligible nodes by name are left alone; `paused` replaces
//     nothing. Neither stops a node without a pod from getting one of the current template.

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
)

// resolveStrategy turns the spec's update strategy into numbers for desired eligible nodes.
//
// An omitted maxUnavailable is 1, or 0 when maxSurge is non-zero: unlike upstream, a user who writes
// only maxSurge gets a surge rollout rather than a rejected object. A surge rollout of a template that
// binds host ports becomes delete-first with maxUnavailable = maxSurge (upstream leaves the surge pod
// Pending forever).
func resolveStrategy(set *nasv1alpha1.NodeAgentSet, desired int) strategy {
	us := set.Spec.UpdateStrategy
	if us.Type == nasv1alpha1.OnDeleteStrategyType {
		return strategy{}
	}
	ru := us.RollingUpdate
	if ru == nil {
		ru = &nasv1alpha1.RollingUpdateNodeAgentSet{}
	}
	s := strategy{rollingUpdate: true, paused: ru.Paused, partition: scaled(ru.Partition, desired)}
	// Any positive maxSurge allows surge, even a percentage that rounds to 0 nodes (upstream
	// AllowsSurge scales against a single node).
	s.surge = scaled(ru.MaxSurge, 1) > 0
	s.maxSurge = scaled(ru.MaxSurge, desired)
	if s.surge && len(HostPorts(&set.Spec.Template.Spec)) > 0 {
		// Two pods that bind the same host port cannot share a node: the surge pod would stay
		// Pending forever. Replace delete-first instead, with the surge budget as the budget.
		return strategy{rollingUpdate: true, paused: s.paused, partition: s.partition,
			maxUnavailable: max(s.maxSurge, 1), surgeBlockedByHostPort: true}
	}
	switch {
	case ru.MaxUnavailable != nil:
		s.maxUnavailable = scaled(ru.MaxUnavailable, desired)
	case !s.surge:
		s.maxUnavailable = 1
	}
	if desired > 0 && s.maxSurge == 0 && s.maxUnavailable == 0 {
		s.maxUnavailable = 1
	}
	return s
}

// scaled resolves an int-or-percent against total, rounding up; nil and malformed values are 0
// (the schema rejects malformed values).
func scaled(v *intstr.IntOrString, total int) int {
	if v == nil {
		return 0
	}
	n, err := intstr.GetScaledValueFromIntOrPercent(v, total, true)
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// rollingUpdate adds the replacements of a RollingUpdate to the plan.
func (w *world) rollingUpdate(p *Plan) {
	if !w.strategy.rollingUpdate || w.strategy.paused {
		return
	}
	// Upstream chooses on maxSurge scaled against the eligible nodes, not on whether surge is allowed:
	// a surge percentage with no eligible node takes the delete-first path.
	if w.strategy.maxSurge > 0 {
		w.rollingUpdateSurge(p)
		return
	}
	w.rollingUpdateDeleteFirst(p)
}

// updatedPods splits a node's live pods into the new one and the old one (rule 24's findUpdatedPods).
// ok is false when the node has more than one of either: manage prunes it, and it counts as busy.
func (w *world) updatedPods(v *nodeView) (newPod, oldPod *corev1.Pod, ok bool) {
	for i, pod := range v.pods {
		if isTerminating(pod) {
			continue
		}
		if w.updated(v, i) {
			if newPod != nil {
				return nil, nil, false
			}
			newPod = pod
		} else {
			if oldPod != nil {
				return nil, nil, false
			}
			oldPod = pod
		}
	}
	return newPod, oldPod, true
}

// rollingUpdateDeleteFirst is rule 46 (maxSurge 0): delete old pods while the unavailable budget
// allows; manage creates their replacements on the next pass.
func (w *world) rollingUpdateDeleteFirst(p *Plan) {
	minReady, now := w.in.Set.Spec.MinReadySeconds, w.in.Now
	numUnavailable := 0
	var candidates []Deletion
	for _, v := range w.rolloutNodes() {
		newPod, oldPod, ok := w.updatedPods(v)
		switch {
		case !ok, newPod == nil && oldPod == nil, newPod != nil && oldPod != nil:
			numUnavailable++
		case newPod != nil:
			if !IsPodAvailable(newPod, minReady, now) {
				numUnavailable++
			}
		case !IsPodAvailable(oldPod, minReady, now):
			// Not available anyway: replacing it costs nothing.
			p.Deletes = append(p.Deletes, Deletion{Pod: oldPod, Node: v.name, Reason: DeleteOutdated})
			numUnavailable++
		default:
			candidates = append(candidates, Deletion{Pod: oldPod, Node: v.name, Reason: DeleteOutdated})
		}
	}
	p.Deletes = append(p.Deletes, candidates[:clamp(w.strategy.maxUnavailable-numUnavailable, len(candidates))]...)
}

// rollingUpdateSurge is rule 47 (maxSurge > 0): create new pods next to old ones while the surge
// budget allows; manage deletes an old pod once the new one on its node is available.
func (w *world) rollingUpdateSurge(p *Plan) {
	minReady, now := w.in.Set.Spec.MinReadySeconds, w.in.Now
	numSurge, numAvailable, desired := 0, 0, 0
	var candidates []string
	var shouldNotRun []Deletion
	for _, v := range w.rolloutNodes() {
		if v.node != nil && v.placement.ShouldRun {
			desired++
		}
		newPod, oldPod, ok := w.updatedPods(v)
		if !ok {
			numSurge++
			continue
		}
		// A node's new pod counts only when it has no old pod (upstream's else-if).
		switch {
		case oldPod != nil && IsPodAvailable(oldPod, minReady, now):
			numAvailable++
		case oldPod == nil && newPod != nil && IsPodAvailable(newPod, minReady, now):
			numAvailable++
		}
		eligible := v.node != nil && v.placement.ShouldRun
		switch {
		case oldPod == nil:
			// Nothing old here; manage takes care of the rest.
		case newPod == nil && !IsPodAvailable(oldPod, minReady, now):
			if !eligible {
				p.Deletes = append(p.Deletes, Deletion{Pod: oldPod, Node: v.name, Reason: DeleteOutdated})
				continue
			}
			// Not available anyway: its replacement comes at once, outside the budget.
			p.Creates = append(p.Creates, v.name)
		case newPod == nil && !eligible:
			shouldNotRun = append(shouldNotRun, Deletion{Pod: oldPod, Node: v.name, Reason: DeleteNodeIneligible})
		case newPod == nil:
			candidates = append(candidates, v.name)
		case !IsPodAvailable(newPod, minReady, now):
			numSurge++
		default:
			p.Deletes = append(p.Deletes, Deletion{Pod: oldPod, Node: v.name, Reason: DeleteSurgeReplaced})
		}
	}
	p.Creates = append(p.Creates, candidates[:clamp(w.strategy.maxSurge-numSurge, len(candidates))]...)
	p.Deletes = append(p.Deletes, shouldNotRun[:clamp(numAvailable-desired, len(shouldNotRun))]...)
}

// rolloutNodes are the nodes the rolling update looks at: every node with pods (eligible or not,
// existing or not) and every eligible node, less the partition.
func (w *world) rolloutNodes() []*nodeView {
	out := make([]*nodeView, 0, len(w.nodes))
	for _, v := range w.nodes {
		if w.partitioned[v.name] {
			continue
		}
		if len(v.pods) > 0 || (v.node != nil && v.placement.ShouldRun) {
			out = append(out, v)
		}
	}
	return out
}

// partitionNodes returns the last n eligible nodes by name: those the rollout leaves alone.
func partitionNodes(nodes []*nodeView, n int) map[string]bool {
	if n <= 0 {
		return nil
	}
	out := make(map[string]bool, n)
	for i := len(nodes) - 1; i >= 0 && len(out) < n; i-- {
		if v := nodes[i]; v.node != nil && v.placement.ShouldRun {
			out[v.name] = true
		}
	}
	return out
}

// rollout summarises the progress of the current template (outside the partition).
func (w *world) rollout() Rollout {
	minReady, now := w.in.Set.Spec.MinReadySeconds, w.in.Now
	r := Rollout{Partition: int32(len(w.partitioned)), Paused: w.strategy.paused, LastProgress: w.in.RolloutStartedAt}
	for _, v := range w.nodes {
		if v.node == nil || !v.placement.ShouldRun {
			continue
		}
		if w.partitioned[v.name] {
			if r.FirstPartitionedNode == "" {
				r.FirstPartitionedNode = v.name
			}
			continue
		}
		r.Target++
		newPod, oldPod, _ := w.updatedPods(v)
		if newPod != nil {
			r.LastProgress = latest(r.LastProgress, newPod.CreationTimestamp.Time)
		}
		switch {
		case newPod != nil && IsPodAvailable(newPod, minReady, now):
			// Only once it is available: a Ready pod within minReadySeconds would date progress in the
			// future, and one that never stays Ready that long would keep postponing the deadline.
			r.LastProgress = latest(r.LastProgress, availableAt(newPod, minReady))
			if oldPod == nil {
				r.UpdatedAvailable++
			}
		case newPod != nil:
			r.Stuck = append(r.Stuck, StuckNode{Node: v.name, Reason: PodProblem(newPod, v.node)})
		case oldPod == nil:
			r.Stuck = append(r.Stuck, StuckNode{Node: v.name, Reason: PodProblem(first(v.pods), v.node)})
		}
	}
	r.Complete = r.UpdatedAvailable >= r.Target
	return r
}

// latest returns the latest of the times; zero times count for nothing.
func latest(ts ...time.Time) time.Time {
	var out time.Time
	for _, t := range ts {
		if t.After(out) {
			out = t
		}
	}
	return out
}

// clamp limits n to [0, hi].
func clamp(n, hi int) int {
	return max(0, min(n, hi))
}

// HostPorts lists the host ports the template's containers bind: explicit hostPorts, and with
// hostNetwork every containerPort.
func HostPorts(spec *corev1.PodSpec) []int32 {
	var ports []int32
	for _, c := range spec.Containers {
		for _, p := range c.Ports {
			switch {
			case p.HostPort > 0:
				ports = append(ports, p.HostPort)
			case spec.HostNetwork && p.ContainerPort > 0:
				ports = append(ports, p.ContainerPort)
			}
		}
	}
	return ports
}
