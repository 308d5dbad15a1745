package main

import "testing"

func TestChurnerKeepsTheNodesNearTheTargetAndMixesTheEvents(t *testing.T) {
	const nodes, steps = 100, 2000
	c := newChurner(1, nodes)
	all, subset := c.eligible()
	if all != nodes || subset != nodes/2 {
		t.Fatalf("start: %d nodes, %d in the subset; want %d and %d", all, subset, nodes, nodes/2)
	}
	live := map[int]bool{}
	for i := 1; i <= nodes; i++ {
		live[i] = true
	}
	ever := map[int]bool{}
	count := map[churnKind]int{}
	for range steps {
		ev := c.step()
		count[ev.kind]++
		applyChurnEvent(t, ev, nodes, live, ever)
		if n, _ := c.eligible(); n != len(live) || n < nodes-1 || n > nodes {
			t.Fatalf("%d live nodes (churner says %d), want %d or %d", len(live), n, nodes-1, nodes)
		}
	}
	// Deletions and joins alternate; about half the events flip a label.
	if d, j := count[churnDelete], count[churnCreate]+count[churnRecreate]; d < j || d > j+1 {
		t.Errorf("%d deletions, %d joins: want them to alternate", d, j)
	}
	if count[churnRecreate] < steps/10 || count[churnCreate] < steps/10 || count[churnFlip] < steps/4 {
		t.Errorf("events %v: want every kind well represented", count)
	}
	// The same seed gives the same schedule.
	a, b := newChurner(7, nodes), newChurner(7, nodes)
	for i := range 500 {
		if x, y := a.step(), b.step(); x != y {
			t.Fatalf("step %d: %+v and %+v from the same seed", i, x, y)
		}
	}
}

// applyChurnEvent checks that ev can happen to the nodes live (ever: deleted at some point) and
// applies it.
func applyChurnEvent(t *testing.T, ev churnEvent, nodes int, live, ever map[int]bool) {
	t.Helper()
	switch ev.kind {
	case churnDelete, churnFlip:
		if !live[ev.node] {
			t.Fatalf("%s of worker-%d, which is not live", ev.kind, ev.node)
		}
		if ev.kind == churnDelete {
			delete(live, ev.node)
			ever[ev.node] = true
		}
	case churnCreate:
		if ever[ev.node] || live[ev.node] || ev.node <= nodes {
			t.Fatalf("create of worker-%d, a name used before", ev.node)
		}
		live[ev.node] = true
	case churnRecreate:
		if live[ev.node] || !ever[ev.node] {
			t.Fatalf("re-create of worker-%d, which was not deleted or is live", ev.node)
		}
		live[ev.node] = true
	}
}

// The events alone say which nodes the subset set selects: a cluster that applies them ends where the
// churner thinks it is.
func TestChurnerEventsDescribeTheSubset(t *testing.T) {
	const nodes = 10
	c := newChurner(3, nodes)
	inSubset := map[int]bool{}
	for i := 1; i <= nodes; i++ {
		inSubset[i] = initialSubset(i)
	}
	flips := 0
	for range 500 {
		ev := c.step()
		switch ev.kind {
		case churnDelete:
			delete(inSubset, ev.node)
		case churnFlip:
			if inSubset[ev.node] == ev.subset {
				t.Fatalf("flip of worker-%d to %v, which it already was", ev.node, ev.subset)
			}
			flips++
			inSubset[ev.node] = ev.subset
		default:
			inSubset[ev.node] = ev.subset
		}
		want := 0
		for _, in := range inSubset {
			if in {
				want++
			}
		}
		if all, subset := c.eligible(); all != len(inSubset) || subset != want {
			t.Fatalf("churner: %d nodes, %d in the subset; the events give %d and %d", all, subset, len(inSubset), want)
		}
	}
	if flips == 0 {
		t.Fatal("no label flips in 500 events")
	}
}
