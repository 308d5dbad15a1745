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
//   - Beyond upstream: `partition` leaves alone the last `partition` eligible nodes by name among those
//     that still run a pod of an older template; `paused` replaces nothing. Neither stops a node without
//     a pod from getting one of the current template. A node that joins gets the current template, so
//     it never runs an old pod and never displaces a held node: the held set changes only when a held
//     node's pod goes, or the partition or the template changes. Held nodes are outside the rollout:
//     one without an available pod does not use up maxUnavailable (it is not for the update to fix).
//   - A node whose failed pod waits for its backoff gets no new pod from the surge update either.
//   - A pod the kubelet terminated for a node shutdown is not replaced, by either path, while its node
//     is not Ready; delete-first counts the node as unavailable.
//   - With unhealthyNodePolicy Skip, unhealthy nodes the rollout has not touched since they broke are
//     left out of both paths and of the target (unhealthy.go).
//   - A canary (canary.go) gives every node the revision it should run: until the canary succeeds, nodes
//     outside it are held (any revision but the one under test counts as updated there, and a create
//     gets the stable revision), so the budgets above apply to the canary nodes alone.

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
// binds host ports becomes delete-first (upstream leaves the surge pod Pending forever) with a safe
// budget: what maxUnavailable allows, at least 1. Never the surge value: maxSurge: 100% as an
// unavailability budget would delete every agent in one pass.
func resolveStrategy(set *nasv1alpha1.NodeAgentSet, desired int) strategy {
	us := set.Spec.UpdateStrategy
	if us.Type == nasv1alpha1.OnDeleteStrategyType {
		return strategy{}
	}
	ru := us.RollingUpdate
	if ru == nil {
		ru = &nasv1alpha1.RollingUpdateNodeAgentSet{}
	}
	s := strategy{rollingUpdate: true, paused: ru.Paused, partition: min(scaled(ru.Partition, desired), desired)}
	// Any positive maxSurge allows surge, even a percentage that rounds to 0 nodes (upstream
	// AllowsSurge scales against a single node).
	s.surge = scaled(ru.MaxSurge, 1) > 0
	s.maxSurge = scaled(ru.MaxSurge, desired)
	if s.surge && len(HostPorts(&set.Spec.Template.Spec)) > 0 {
		// Two pods that bind the same host port cannot share a node: the surge pod would stay
		// Pending forever. Replace delete-first instead, within what maxUnavailable allows.
		return strategy{rollingUpdate: true, paused: s.paused, partition: s.partition,
			maxUnavailable: max(scaled(ru.MaxUnavailable, desired), 1), surgeBlockedByHostPort: true}
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
	newIndex, oldIndex, ok := w.updatedIndexes(v)
	return podAt(v, newIndex), podAt(v, oldIndex), ok
}

// updatedIndexes is updatedPods as indexes into the node's pods, -1 for none.
func (w *world) updatedIndexes(v *nodeView) (newIndex, oldIndex int, ok bool) {
	newIndex, oldIndex = -1, -1
	for i := range v.pods {
		if v.podTerminating(i) {
			continue
		}
		if w.updated(v, i) {
			if newIndex >= 0 {
				return -1, -1, false
			}
			newIndex = i
		} else {
			if oldIndex >= 0 {
				return -1, -1, false
			}
			oldIndex = i
		}
	}
	return newIndex, oldIndex, true
}

// podAt is the node's i-th pod; nil for -1.
func podAt(v *nodeView, i int) *corev1.Pod {
	if i < 0 {
		return nil
	}
	return v.pods[i]
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
		case holdsShutdownPod(v):
			// Its failed pod waits for the node to come back from its shutdown: it is not replaced.
			numUnavailable++
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
			w.replaceUnavailable(v, oldPod, eligible, p)
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

// replaceUnavailable is the surge path for an old pod that is not available: on a node that should
// not run the set it goes; otherwise its replacement comes at once, outside the budget, unless a failed
// pod waits for its backoff or for its node to come back from a shutdown.
func (w *world) replaceUnavailable(v *nodeView, oldPod *corev1.Pod, eligible bool, p *Plan) {
	switch {
	case holdsShutdownPod(v):
		// Its failed pod waits for the node to come back from its shutdown.
	case !eligible:
		p.Deletes = append(p.Deletes, Deletion{Pod: oldPod, Node: v.name, Reason: DeleteOutdated})
	case w.inBackoff(v):
		// A failed pod waits for its backoff: nothing is created next to it meanwhile.
	default:
		p.Creates = append(p.Creates, v.name)
	}
}

// rolloutNodes are the nodes the rolling update looks at: every node with pods (eligible or not,
// existing or not) and every eligible node, less the partition and the skipped unhealthy nodes.
func (w *world) rolloutNodes() []*nodeView {
	out := make([]*nodeView, 0, len(w.nodes))
	for _, v := range w.nodes {
		if w.partitioned[v.name] || w.skipped[v.name].Code != "" {
			continue
		}
		if len(v.pods) > 0 || (v.node != nil && v.placement.ShouldRun) {
			out = append(out, v)
		}
	}
	return out
}

// partitionNodes returns the nodes the rollout leaves alone, and the first of them by name: the
// last n eligible nodes by name among those that still run a live pod of an older template. Nodes
// running only the current template (every node that joined since the template changed) are never
// held, so a node that joins or leaves never pushes a held node out of the partition.
func (w *world) partitionNodes(n int) (map[string]bool, string) {
	if n <= 0 {
		return nil, ""
	}
	out := make(map[string]bool, n)
	first := ""
	for i := len(w.nodes) - 1; i >= 0 && len(out) < n; i-- {
		if v := w.nodes[i]; v.node != nil && v.placement.ShouldRun && w.runsOldPod(v) {
			out[v.name] = true
			first = v.name
		}
	}
	return out, first
}

// runsOldPod: the node runs a pod of an older template that is neither terminating nor terminated.
func (w *world) runsOldPod(v *nodeView) bool {
	for i, pod := range v.pods {
		if !w.updated(v, i) && !isTerminating(pod) && !isTerminal(pod) {
			return true
		}
	}
	return false
}

// rollout summarises the progress of the current template (outside the partition) and gives the
// verdict.
func (w *world) rollout(deadline time.Duration) Rollout {
	minReady := w.in.Set.Spec.MinReadySeconds
	r := Rollout{Partition: int32(len(w.partitioned)), FirstPartitionedNode: w.firstPartitioned, Paused: w.strategy.paused,
		LastProgress: w.in.RolloutStartedAt}
	// The stuck nodes are marked first and their reasons built into a list of the right size: grown
	// by append, a list of 30,000 reasons cost five times its size in allocations.
	stuck := make([]stuckKind, len(w.nodes))
	numStuck := 0
	for i, v := range w.nodes {
		if reason, ok := w.skipped[v.name]; ok {
			r.Skipped = append(r.Skipped, StuckNode{Node: v.name, Reason: reason})
			continue
		}
		if v.node == nil || !v.placement.ShouldRun || w.partitioned[v.name] {
			continue
		}
		r.Target++
		newIndex, oldIndex, _ := w.updatedIndexes(v)
		newPod, oldPod := podAt(v, newIndex), podAt(v, oldIndex)
		r.LastProgress = latest(r.LastProgress, w.backAt(v, newPod, oldPod))
		if newPod != nil {
			r.LastProgress = latest(r.LastProgress, v.facts[newIndex].created)
		}
		switch {
		case newPod != nil && w.available(v, newIndex):
			// Only once it is available: a Ready pod within minReadySeconds would date progress in the
			// future, and one that never stays Ready that long would keep postponing the deadline.
			r.LastProgress = latest(r.LastProgress, readyAvailableAt(v.facts[newIndex].ready, minReady))
			if oldPod == nil {
				r.UpdatedAvailable++
			}
		case newPod != nil:
			stuck[i] = stuckNewPod
			numStuck++
		case oldPod == nil:
			stuck[i] = stuckNoPod
			numStuck++
		}
	}
	r.Stuck = w.stuckNodes(stuck, numStuck)
	r.Complete = r.UpdatedAvailable >= r.Target
	w.verdict(&r, deadline)
	return r
}

// stuckNodes lists the nodes marked stuck, numStuck of them, each with its reason; nil without any.
func (w *world) stuckNodes(stuck []stuckKind, numStuck int) []StuckNode {
	if numStuck == 0 {
		return nil
	}
	out := make([]StuckNode, 0, numStuck)
	for i, v := range w.nodes {
		switch stuck[i] {
		case stuckNewPod:
			newPod, _, _ := w.updatedPods(v)
			out = append(out, StuckNode{Node: v.name, Reason: w.nodeReason(v, newPod)})
		case stuckNoPod:
			out = append(out, StuckNode{Node: v.name, Reason: w.nodeReason(v, first(v.pods))})
		}
	}
	return out
}

// verdict sets the rollout's phase and, while it progresses, its deadline.
func (w *world) verdict(r *Rollout, deadline time.Duration) {
	switch {
	case r.Complete:
		r.Phase = RolloutComplete
	case !w.strategy.rollingUpdate:
		r.Phase = RolloutWaitingForDeletion
	case r.Paused:
		r.Phase = RolloutPaused
	case r.LastProgress.IsZero():
		r.Phase = RolloutProgressing
	default:
		r.Deadline = r.LastProgress.Add(deadline)
		r.Phase = RolloutProgressing
		if !w.in.Now.Before(r.Deadline) {
			r.Phase = RolloutDeadlineExceeded
		}
	}
}

// stuckKind says whether the rollout counts a node as stuck, and on which pod: its new pod, or its
// first (a node with neither a new nor an old pod, only terminating or terminated ones, or none).
type stuckKind uint8

const (
	notStuck stuckKind = iota
	stuckNewPod
	stuckNoPod
)

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
// hostNetwork every containerPort. As the scheduler does, it counts sidecars (init containers with
// restartPolicy: Always), which run next to the containers.
func HostPorts(spec *corev1.PodSpec) []int32 {
	var ports []int32
	containers := make([]corev1.Container, 0, len(spec.InitContainers)+len(spec.Containers))
	for _, c := range spec.InitContainers {
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			containers = append(containers, c)
		}
	}
	for _, c := range append(containers, spec.Containers...) {
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
