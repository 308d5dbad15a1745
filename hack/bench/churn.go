package main

// The node churn of the soak (--soak): which node event comes next. The schedule is pure and seeded,
// so that a soak can be repeated event for event and the schedule tested without a cluster.

import (
	"math/rand/v2"
	"slices"
)

// churnKind is the kind of one node event.
type churnKind int

const (
	// churnDelete deletes a node.
	churnDelete churnKind = iota
	// churnCreate adds a node under a name never used before.
	churnCreate
	// churnRecreate adds a node under the name of one deleted earlier (its pods may still be there).
	churnRecreate
	// churnFlip flips a node's soakSubsetLabel: the node enters or leaves the subset set.
	churnFlip
)

func (k churnKind) String() string {
	return [...]string{"delete", "create", "re-create", "label flip"}[k]
}

// churnEvent is one node event: its kind, the node's number (worker-<node>) and, for a node that joins
// or flips, whether it is in the subset afterwards.
type churnEvent struct {
	kind   churnKind
	node   int
	subset bool
}

// churner schedules the node events. It keeps the number of nodes within one of target: below it, a
// node joins (half the time under the name of a deleted node); otherwise a node is deleted or a live
// node's subset label flips, with even odds. So deletions and joins alternate, and about half the
// events change a node's eligibility through its label.
type churner struct {
	rng    *rand.Rand
	target int
	live   []int        // numbers of the live nodes, in no order.
	subset map[int]bool // number -> in the subset (live nodes only).
	gone   []int        // numbers of deleted nodes that have not come back.
	next   int          // the number of the next new node.
}

// initialSubset is whether node i is in the subset when the soak starts: every second node.
func initialSubset(i int) bool { return i%2 == 0 }

// newChurner starts from nodes 1..nodes, every second one in the subset.
func newChurner(seed uint64, nodes int) *churner {
	c := &churner{rng: rand.New(rand.NewPCG(seed, seed)), target: nodes, subset: map[int]bool{}, next: nodes + 1}
	for i := 1; i <= nodes; i++ {
		c.live = append(c.live, i)
		c.subset[i] = initialSubset(i)
	}
	return c
}

// step picks the next event and records its effect.
func (c *churner) step() churnEvent {
	if len(c.live) < c.target || len(c.live) == 0 {
		ev := churnEvent{kind: churnCreate, node: c.next, subset: c.rng.IntN(2) == 0}
		if len(c.gone) > 0 && c.rng.IntN(2) == 0 {
			k := c.rng.IntN(len(c.gone))
			ev.kind, ev.node = churnRecreate, c.gone[k]
			c.gone = slices.Delete(c.gone, k, k+1)
		} else {
			c.next++
		}
		c.live = append(c.live, ev.node)
		c.subset[ev.node] = ev.subset
		return ev
	}
	k := c.rng.IntN(len(c.live))
	node := c.live[k]
	if c.rng.IntN(2) == 0 {
		c.subset[node] = !c.subset[node]
		return churnEvent{kind: churnFlip, node: node, subset: c.subset[node]}
	}
	c.live[k] = c.live[len(c.live)-1]
	c.live = c.live[:len(c.live)-1]
	delete(c.subset, node)
	c.gone = append(c.gone, node)
	return churnEvent{kind: churnDelete, node: node}
}

// eligible counts the live nodes, and those of them in the subset.
func (c *churner) eligible() (all, subset int) {
	for _, n := range c.live {
		if c.subset[n] {
			subset++
		}
	}
	return len(c.live), subset
}
