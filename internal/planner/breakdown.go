package planner

import (
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
	byCode := map[ReasonCode][]string{}
	for name, s := range states {
		if s.Placement.ShouldRun && !s.Reason.Code.Outdated() {
			byCode[s.Reason.Code] = append(byCode[s.Reason.Code], name)
		}
	}
	if len(byCode) == 0 {
		return nil
	}
	out := make([]UnavailableGroup, 0, len(byCode))
	for code, names := range byCode {
		sort.Strings(names)
		out = append(out, UnavailableGroup{Code: code, Count: int32(len(names)), Nodes: names[:min(len(names), MaxNodesPerGroup)]})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Code < out[j].Code
	})
	return out
}
