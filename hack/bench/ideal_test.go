package main

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// The reference rollout, played against a kubelet that finishes one write at a time in the order the
// writes came: every node gets one replacement, created only once its old pod is gone, and never more
// nodes are without a Ready pod than the budget.
func TestIdealRollerKeepsTheBudget(t *testing.T) {
	const nodes, budget = 25, 3
	old := map[string]string{}
	for i := range nodes {
		old[fmt.Sprintf("n%02d", i)] = fmt.Sprintf("old-%02d", i)
	}
	r := newIdealRoller(old)
	var queue []rollAction
	unavailable := map[string]bool{} // a delete issued, the replacement not Ready yet.
	maxUnavailable := 0
	issue := func(acts []rollAction) {
		for _, a := range acts {
			if a.del != "" {
				unavailable[a.node] = true
			}
		}
		queue = append(queue, acts...)
		maxUnavailable = max(maxUnavailable, len(unavailable))
	}
	gone := map[string]bool{}
	created := map[string]int{}
	issue(r.start(budget))
	for len(queue) > 0 {
		a := queue[0]
		queue = queue[1:]
		if a.del != "" {
			if a.del != old[a.node] {
				t.Fatalf("deleted %s on %s, want %s", a.del, a.node, old[a.node])
			}
			gone[a.node] = true
			issue(r.on(rollEvent{node: a.node}))
			continue
		}
		if !gone[a.node] {
			t.Fatalf("a replacement on %s before its old pod went", a.node)
		}
		created[a.node]++
		delete(unavailable, a.node)
		issue(r.on(rollEvent{node: a.node, readied: true}))
	}
	if !r.done() {
		t.Fatalf("not done: %d of %d Ready", r.readys, nodes)
	}
	for n := range old {
		if created[n] != 1 {
			t.Errorf("%s: %d replacements, want 1", n, created[n])
		}
	}
	if maxUnavailable != budget {
		t.Errorf("at most %d nodes without a Ready pod, want the budget %d", maxUnavailable, budget)
	}
	if acts := r.on(rollEvent{node: "elsewhere", readied: true}); acts != nil {
		t.Errorf("an event on a node the rollout does not replace: %v", acts)
	}
}

// rollEventOf turns the tracker's view of a pod event into the reference rollout's events: an old
// pod gone, a new pod turning Ready; nothing else.
func TestRollEventOf(t *testing.T) {
	const img = "new"
	oldReady := stagePod("a", "n1", "old", true, false)
	newBound := stagePod("b", "n1", img, false, false)
	newReady := stagePod("b", "n1", img, true, false)
	for _, tc := range []struct {
		name      string
		prev, cur *corev1.Pod
		want      rollEvent
		ok        bool
	}{
		{"old pod gone", oldReady, nil, rollEvent{node: "n1"}, true},
		{"new pod gone", newReady, nil, rollEvent{}, false},
		{"new pod turns Ready", newBound, newReady, rollEvent{node: "n1", readied: true}, true},
		{"new pod seen Ready at once", nil, newReady, rollEvent{node: "n1", readied: true}, true},
		{"new pod stays Ready", newReady, newReady, rollEvent{}, false},
		{"new pod bound, not Ready", nil, newBound, rollEvent{}, false},
		{"old pod marked for deletion", oldReady, stagePod("a", "n1", "old", true, true), rollEvent{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := rollEventOf(tc.prev, tc.cur, img)
			if got != tc.want || ok != tc.ok {
				t.Errorf("rollEventOf = %v, %v; want %v, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}
