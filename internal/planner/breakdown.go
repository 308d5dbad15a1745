package planner

import (
	"slices"
	"sort"
)

// MaxNodesPerGroup caps the node names an UnavailableGroup lists.
const MaxNodesPerGroup = 5

// Breakdown groups the eligible nodes without an available agent pod by reason code, most nodes first
// (ties by code), each with its first MaxNodesPerGroup nodes by name. These are exactly the nodes
// status counts as unavailable: the states of eligible nodes whose reason is not one of an available
// pod of an older template (ReasonCode.Outdated). So the counts sum to DesiredNumberScheduled -
// NumberAvailable. Reasons that only hold an available pod back (partition, pause, OnDelete, the
// budget, a skipped unhealthy node) never appear: such a node is available.
func Breakdown(states map[string]NodeState) []UnavailableGroup {
	names := make([]string, 0, len(states))
	for name := range states {
		names = append(names, name)
	}
	slices.Sort(names)
	var groups breakdown
	for _, name := range names {
		s := states[name]
		groups.add(name, s.Placement.ShouldRun, s.Reason.Code)
	}
	return groups.result()
}

// breakdown gathers Breakdown's groups from the node states (placement and code) added in node-name order: each code's count
// and first nodes, without a list of every name to sort.
type breakdown []UnavailableGroup

func (b *breakdown) add(name string, shouldRun bool, code ReasonCode) {
	if !shouldRun || code.Outdated() {
		return
	}
	for i := range *b {
		if g := &(*b)[i]; g.Code == code {
			g.Count++
			if len(g.Nodes) < MaxNodesPerGroup {
				g.Nodes = append(g.Nodes, name)
			}
			return
		}
	}
	*b = append(*b, UnavailableGroup{Code: code, Count: 1, Nodes: []string{name}})
}

// result is the groups, most nodes first (ties by code); nil without any.
func (b breakdown) result() []UnavailableGroup {
	if len(b) == 0 {
		return nil
	}
	out := []UnavailableGroup(b)
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Code < out[j].Code
	})
	return out
}
