package planner

import (
	"fmt"
	"testing"

	"k8s.io/apimachinery/pkg/util/intstr"
)

// BenchmarkCompute is one planner pass over clusters of 1,000 and 5,000 nodes, in the two states that
// dominate a benchmark run: half covered, and mid-rollout (half the pods of the old revision, 10% of
// nodes without a pod). ns/op should grow linearly with the nodes: make bench shows whether the
// controller as a whole does.
func BenchmarkCompute(b *testing.B) {
	for _, n := range []int{1000, 5000} {
		nodes := newNodes(0, n, nil)
		set := newSet(withStrategy(maxUnavailable(intstr.FromString("10%"))))
		covering := Input{Set: set, Hash: curHash, Nodes: nodes, Now: t0, Template: accepted}
		rolling := Input{Set: set, Hash: curHash, Nodes: nodes, Now: t0, RolloutStartedAt: t0, Template: accepted}
		for i, node := range nodes {
			name := fmt.Sprintf("pod-%05d", i)
			if i%2 == 0 {
				covering.Pods = append(covering.Pods, newPod(name, node.Name, readySince(t0)))
			}
			switch {
			case i%10 == 9: // no pod: deleted by the rollout, its replacement not created yet.
			case i%2 == 0:
				rolling.Pods = append(rolling.Pods, newPod(name, node.Name, readySince(t0)))
			default:
				rolling.Pods = append(rolling.Pods, newPod(name, node.Name, withHash(oldHash), readySince(t0)))
			}
		}
		for _, tc := range []struct {
			name string
			in   Input
		}{{"covering", covering}, {"rolling", rolling}} {
			b.Run(fmt.Sprintf("%s/nodes=%d", tc.name, n), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					Compute(tc.in)
				}
			})
		}
	}
}
