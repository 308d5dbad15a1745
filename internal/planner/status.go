package planner

import (
	corev1 "k8s.io/api/core/v1"
)

// status computes the counters of rule 50 and the state of every node that is excluded, lacks an
// available agent, or runs an available agent of an older template, each with its reason, and the
// breakdown of those states (Breakdown). Only the oldest pod of a node is looked at (during a surge,
// the old one), and pods on nodes that no longer exist are not counted.
func (w *world) status(req *requeue) (Counters, map[string]NodeState, []UnavailableGroup) {
	var c Counters
	minReady, now := w.in.Set.Spec.MinReadySeconds, w.in.Now
	// The counters first, noting which nodes get a state, so that the map of states is made at its
	// size: grown entry by entry, a map of 30,000 states is rebuilt a dozen times.
	kinds := make([]stateKind, len(w.nodes))
	numStates := 0
	for i, v := range w.nodes {
		if v.node == nil {
			continue
		}
		if !v.placement.ShouldRun {
			if len(v.pods) > 0 {
				c.NumberMisscheduled++
			}
			kinds[i] = stateExcluded
			numStates++
			continue
		}
		c.DesiredNumberScheduled++
		if len(v.pods) == 0 {
			kinds[i] = stateNoPod
			numStates++
			continue
		}
		c.CurrentNumberScheduled++
		ready := v.facts[0].ready
		available := readyAvailable(ready, minReady, now)
		if conditionTrue(ready) {
			c.NumberReady++
			if at := readyAvailableAt(ready, minReady); !available && !at.IsZero() {
				req.at(at)
			}
		}
		updated := w.current(v, 0)
		switch {
		case !available:
			kinds[i] = stateUnavailable
			numStates++
		case !updated:
			kinds[i] = stateOutdated
			numStates++
		}
		if available {
			c.NumberAvailable++
		}
		if updated {
			c.UpdatedNumberScheduled++
		}
	}
	c.NumberUnavailable = c.DesiredNumberScheduled - c.NumberAvailable
	states := make(map[string]NodeState, numStates)
	var groups breakdown
	for i, v := range w.nodes {
		if kinds[i] == stateNone {
			continue
		}
		s := w.nodeState(v, kinds[i])
		states[v.name] = s
		groups.add(v.name, s.Placement.ShouldRun, s.Reason.Code)
	}
	return c, states, groups.result()
}

// nodeState is the state status gives a node of that kind.
func (w *world) nodeState(v *nodeView, kind stateKind) NodeState {
	switch kind {
	case stateExcluded:
		return NodeState{Placement: v.placement, Reason: *v.placement.Exclusion, Node: v.node, Pod: first(v.pods)}
	case stateNoPod:
		return NodeState{Placement: v.placement, Reason: w.nodeReason(v, nil), Node: v.node}
	case stateUnavailable:
		return NodeState{Placement: v.placement, Reason: w.nodeReason(v, v.pods[0]), Node: v.node, Pod: v.pods[0],
			Partitioned: w.partitioned[v.name]}
	default:
		return NodeState{Placement: v.placement, Reason: w.outdatedReason(v), Node: v.node, Pod: v.pods[0],
			Partitioned: w.partitioned[v.name]}
	}
}

// stateKind is which state, if any, status gives a node.
type stateKind uint8

const (
	stateNone stateKind = iota
	stateExcluded
	stateNoPod
	stateUnavailable
	stateOutdated
)

func first(pods []*corev1.Pod) *corev1.Pod {
	if len(pods) == 0 {
		return nil
	}
	return pods[0]
}

// currentRevision is the hash most live pods carry; ties go to the current template's hash, then to
// the smaller hash. Without pods it is the current template's hash.
func (w *world) currentRevision() string {
	// A pass sees a handful of hashes: a list of them counts faster than a map.
	type hashCount struct {
		hash  string
		count int
	}
	var counts []hashCount
	for _, v := range w.nodes {
		for i := range v.pods {
			if v.podTerminating(i) {
				continue
			}
			j := 0
			for j < len(counts) && counts[j].hash != v.facts[i].hash {
				j++
			}
			if j == len(counts) {
				counts = append(counts, hashCount{hash: v.facts[i].hash})
			}
			counts[j].count++
		}
	}
	best, bestCount := w.in.Hash, 0
	for _, c := range counts {
		if c.hash == w.in.Hash {
			bestCount = c.count
		}
	}
	for _, c := range counts {
		if hash, n := c.hash, c.count; hash != "" && (n > bestCount || (n == bestCount && hash != w.in.Hash && best != w.in.Hash && hash < best)) {
			best, bestCount = hash, n
		}
	}
	return best
}
