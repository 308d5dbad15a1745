package main

import (
	"slices"
	"strings"
	"testing"
	"time"
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

// kube-controller-manager's node lifecycle controller must not mark kwok's nodes NotReady during a run:
// kwok never readies a pod again once the controller has marked it NotReady, and a 10,000-node run,
// whose leases kwok renews minutes late, waited on 115 such pods (2026-12-06). The grace period is
// longer than any run (the longest, 10,000 nodes, takes under an hour; the soak 35 minutes).
func TestKubeControllerManagerNeverJudgesKwokNodes(t *testing.T) {
	var grace string
	for _, f := range kcmFlags("/cluster", 10257) {
		if v, ok := strings.CutPrefix(f, "--node-monitor-grace-period="); ok {
			grace = v
		}
	}
	d, err := time.ParseDuration(grace)
	if err != nil {
		t.Fatalf("--node-monitor-grace-period=%q: %v", grace, err)
	}
	if d < 12*time.Hour {
		t.Errorf("--node-monitor-grace-period=%s: a late kwok lease would get a node's pods marked NotReady for good", d)
	}
}
