package main

import (
	"slices"
	"testing"
)

func TestPairOrderAlternates(t *testing.T) {
	first := map[string]int{}
	for i := 1; i <= 4; i++ {
		order := pairOrder(i, false)
		if len(order) != 2 || !slices.Contains(order, kindDS) || !slices.Contains(order, kindNAS) {
			t.Fatalf("pair %d runs %v, want both trials once", i, order)
		}
		first[order[0]]++
	}
	if first[kindDS] != 2 || first[kindNAS] != 2 {
		t.Errorf("over four pairs the trials went first %v times, want twice each", first)
	}
	if got := pairOrder(2, true); !slices.Equal(got, []string{kindNAS}) {
		t.Errorf("with the DaemonSet skipped, pair 2 runs %v, want the NodeAgentSet alone", got)
	}
}
