//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
)

// The invariants the chaos spec holds the sets to (docs/design/chaos.md, "The invariants"), by name.
const (
	invNoTwoPods   = "no-two-pods"
	invBudget      = "budget"
	invIneligible  = "ineligible"
	invConvergence = "convergence"
)

// chaosChecker checks the invariants on every pod event of the namespace and once a second. The pods
// come from a list and a watch from its resourceVersion, listed again whenever the watch breaks or
// expires; the nodes' eligibility comes from the injector, their only writer.
type chaosChecker struct {
	ns    string
	bound time.Duration

	mu    sync.Mutex
	sets  map[string]*checkedSet // by the pods' app label.
	pods  map[types.UID]*corev1.Pod
	nodes map[string]*chaosNode

	apiDown      [][2]time.Time // the API server's downtimes.
	apiDownSince time.Time      // zero while it is up.
	leaderless   [][2]time.Time // the times without a working leader, from a kill or freeze.
	leaderGoneAt time.Time      // zero while a leader works.

	checks     map[string]int
	violations []string            // the first message of each violation.
	seen       map[string]struct{} // the violations already reported: one message each.
	events     int
	lists      int // lists: the first, then one after each 410 Gone.
	watches    int // watches started: the first, then one after each break.
	expired    int // 410 Gone answers to a watch.
	blind      time.Duration
	maxStay    time.Duration // the longest a live pod stayed on an ineligible node.
}

// chaosNode is what the injector did to a node.
type chaosNode struct {
	eligible bool      // the label.
	exists   bool      // the node exists and has lost the not-ready taint it is created with.
	joined   time.Time // last became eligible, or was re-created.
	left     time.Time // last lost the label.
}

type checkedSet struct {
	name           string
	surge          bool
	maxUnavailable int
	minReady       int32
	covered        map[string]bool // nodes that had an available pod since they joined.
}

func newChaosChecker(ns string, nodes []string, bound time.Duration) *chaosChecker {
	c := &chaosChecker{ns: ns, bound: bound, sets: map[string]*checkedSet{}, pods: map[types.UID]*corev1.Pod{},
		nodes: map[string]*chaosNode{}, checks: map[string]int{}, seen: map[string]struct{}{}}
	for _, n := range nodes {
		c.nodes[n] = &chaosNode{eligible: true, exists: true}
	}
	return c
}

func (c *chaosChecker) addSet(s *nasv1alpha1.NodeAgentSet) {
	ru := s.Spec.UpdateStrategy.RollingUpdate
	cs := &checkedSet{name: s.Name, minReady: s.Spec.MinReadySeconds, covered: map[string]bool{}}
	if ru.MaxSurge != nil && ru.MaxSurge.String() != "0" && ru.MaxSurge.String() != "0%" {
		cs.surge = true
	} else {
		cs.maxUnavailable = ru.MaxUnavailable.IntValue()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sets[s.Spec.Selector.MatchLabels["app"]] = cs
}

func (c *chaosChecker) eligible(node string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[node].eligible
}

func (c *chaosChecker) ineligibleCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, s := range c.nodes {
		if !s.eligible {
			n++
		}
	}
	return n
}

// joined starts a node's time as a newcomer: no set has covered it yet. c.mu is held.
func (c *chaosChecker) joined(node string, t time.Time) {
	c.nodes[node].joined = t
	for _, s := range c.sets {
		delete(s.covered, node)
	}
}

func (c *chaosChecker) flipped(node string, eligible bool, t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.nodes[node]
	n.eligible = eligible
	if eligible {
		c.joined(node, t)
	} else {
		n.left = t
	}
}

// joining: the injector is about to put the node's eligibility label back. From the moment the write
// lands, which may be before the call returns, the controller may create the node's pods, and the
// checker may see them before flipped: the node no longer counts as ineligible, nor yet as eligible.
func (c *chaosChecker) joining(node string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nodes[node].left = time.Time{}
}

// present: the node exists and is untainted (not being re-created).
func (c *chaosChecker) present(node string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[node].exists
}

func (c *chaosChecker) nodeGone(node string, _ time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nodes[node].exists = false
}

func (c *chaosChecker) nodeBack(node string, t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nodes[node].exists = true
	c.joined(node, t)
}

func (c *chaosChecker) apiServerDown(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.apiDownSince = t
}

func (c *chaosChecker) apiServerUp(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.apiDown = append(c.apiDown, [2]time.Time{c.apiDownSince, t})
	c.apiDownSince = time.Time{}
}

// leaderGone: the injector killed or froze the leader.
func (c *chaosChecker) leaderGone(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.leaderGoneAt.IsZero() {
		c.leaderGoneAt = t
	}
}

// leaderWorks: a leader has caught up with the API server (its handover is done) and reconciles.
func (c *chaosChecker) leaderWorks(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.leaderGoneAt.IsZero() {
		c.leaderless = append(c.leaderless, [2]time.Time{c.leaderGoneAt, t})
		c.leaderGoneAt = time.Time{}
	}
}

// deadline is from + the reconcile bound + the time since from during which nothing could reconcile:
// the API server down (everyone lists again after), or no leader at work (killed or frozen, until the
// next one has caught up). c.mu is held.
func (c *chaosChecker) deadline(from, now time.Time) time.Time {
	var outages [][2]time.Time
	add := func(a, b time.Time) {
		a = later(a, from)
		if b.After(a) {
			outages = append(outages, [2]time.Time{a, b})
		}
	}
	for _, r := range append(slices.Clone(c.apiDown), c.leaderless...) {
		add(r[0], r[1])
	}
	for _, since := range []time.Time{c.apiDownSince, c.leaderGoneAt} {
		if !since.IsZero() {
			add(since, now)
		}
	}
	// The outages overlap (a restarted API server costs the leader its lease): count their union.
	slices.SortFunc(outages, func(x, y [2]time.Time) int { return x[0].Compare(y[0]) })
	d := from.Add(c.bound)
	var end time.Time
	for _, o := range outages {
		start := later(o[0], end)
		if o[1].After(start) {
			d = d.Add(o[1].Sub(start))
		}
		end = later(end, o[1])
	}
	return d
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// restartSlack is how long a restarted API server may refuse requests: until its RBAC authorizer's
// informers have synced it denies what it does not know yet ("forbidden").
const restartSlack = 15 * time.Second

// afterRestart says whether a controller's log line (JSON, with "ts") was written while the API
// server was down or just restarted.
func (c *chaosChecker) afterRestart(line string) bool {
	var entry struct {
		TS string `json:"ts"`
	}
	if json.Unmarshal([]byte(line), &entry) != nil {
		return false
	}
	t, err := time.Parse(time.RFC3339Nano, entry.TS)
	if err != nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range c.apiDown {
		if !t.Before(r[0]) && !t.After(r[1].Add(restartSlack)) {
			return true
		}
	}
	return false
}

func (c *chaosChecker) countConvergence(sets int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.checks[invConvergence] += sets
}

// violation records a broken invariant; key says which one it is, so that one that lasts is
// reported once. c.mu is held.
func (c *chaosChecker) violation(key, msg string) {
	if _, ok := c.seen[key]; ok {
		return
	}
	c.seen[key] = struct{}{}
	c.violations = append(c.violations, time.Now().Format(time.StampMilli)+" "+msg)
	chaosLog("VIOLATION %s", msg)
}

func (c *chaosChecker) total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, v := range c.checks {
		n += v
	}
	return n
}

// run lists and watches the namespace's pods until ctx ends, checking on every event and every second.
// A watch that breaks (the API server restarted) is started again from the last resourceVersion seen,
// as an informer does: nothing is missed. Only when the API server answers 410 Gone (that version
// is older than what it still has: a compaction, a restarted watch cache) does it list again, and the
// time since the break, whose events are lost, counts as blind.
func (c *chaosChecker) run(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	rv := "" // the last resourceVersion seen; empty: list again.
	var brokeAt time.Time
	for ctx.Err() == nil {
		if rv == "" {
			var list corev1.PodList
			if err := k8s.List(ctx, &list, client.InNamespace(c.ns)); err != nil {
				sleep(ctx, 200*time.Millisecond)
				continue
			}
			c.resync(list.Items, brokeAt)
			rv, brokeAt = list.ResourceVersion, time.Time{}
		}
		w, err := k8s.Watch(ctx, &corev1.PodList{}, client.InNamespace(c.ns),
			&client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: rv, AllowWatchBookmarks: true}})
		if err != nil {
			if c.isExpired(err) {
				rv = ""
			} else {
				sleep(ctx, 200*time.Millisecond)
			}
			continue
		}
		c.mu.Lock()
		c.watches++
		c.mu.Unlock()
		var events int
		var expired bool
		rv, events, expired = c.follow(ctx, w, tick.C, rv)
		w.Stop()
		if events > 0 || brokeAt.IsZero() {
			brokeAt = time.Now()
		}
		if expired {
			rv = ""
		}
	}
}

// isExpired counts a 410 Gone answer.
func (c *chaosChecker) isExpired(err error) bool {
	if !apierrors.IsResourceExpired(err) && !apierrors.IsGone(err) {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expired++
	return true
}

// follow applies the watch's events until it ends (broken, expired) or ctx does; it returns the last
// resourceVersion seen, how many events came, and whether the watch expired.
func (c *chaosChecker) follow(ctx context.Context, w watch.Interface, tick <-chan time.Time, rv string) (string, int, bool) {
	events := 0
	for {
		select {
		case <-ctx.Done():
			return rv, events, false
		case <-tick:
			c.checkAll()
		case ev, ok := <-w.ResultChan():
			if !ok {
				return rv, events, false
			}
			if ev.Type == watch.Error {
				return rv, events, c.isExpired(apierrors.FromObject(ev.Object))
			}
			events++
			if obj, ok := ev.Object.(client.Object); ok {
				rv = obj.GetResourceVersion()
			}
			if pod, ok := ev.Object.(*corev1.Pod); ok && ev.Type != watch.Bookmark {
				c.observe(ev.Type, pod)
			}
		}
	}
}

// resync replaces the pods by a list: a consistent state of the store, checked as one.
// brokeAt is when the watch whose events are lost broke (zero for the first list).
func (c *chaosChecker) resync(pods []corev1.Pod, brokeAt time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	if !brokeAt.IsZero() {
		c.blind += now.Sub(brokeAt)
	}
	c.lists++
	c.pods = map[types.UID]*corev1.Pod{}
	for i := range pods {
		c.pods[pods[i].UID] = &pods[i]
	}
	for _, s := range c.sets {
		c.checkSet(s, now, "")
	}
}

func (c *chaosChecker) observe(t watch.EventType, pod *corev1.Pod) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	c.events++
	old := c.pods[pod.UID]
	if node := c.nodes[targetNode(pod)]; node != nil && node.exists && !node.eligible && !node.left.IsZero() &&
		old != nil && old.DeletionTimestamp == nil && (t == watch.Deleted || pod.DeletionTimestamp != nil) {
		c.maxStay = max(c.maxStay, now.Sub(node.left))
	}
	if t == watch.Deleted {
		delete(c.pods, pod.UID)
	} else {
		c.pods[pod.UID] = pod
	}
	if s := c.sets[pod.Labels["app"]]; s != nil {
		c.checkSet(s, now, targetNode(pod))
	}
}

func (c *chaosChecker) checkAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	for _, s := range c.sets {
		c.checkBudget(s, c.setPodsByNode(s), now)
		c.checkIneligible(s, c.setPodsByNode(s), now)
	}
}

// setPodsByNode groups the set's pods, terminating ones included, by target node. c.mu is held.
func (c *chaosChecker) setPodsByNode(s *checkedSet) map[string][]*corev1.Pod {
	m := map[string][]*corev1.Pod{}
	for _, p := range c.pods {
		if c.sets[p.Labels["app"]] == s {
			n := targetNode(p)
			m[n] = append(m[n], p)
		}
	}
	return m
}

// checkSet checks the three invariants of a set after an event on node (every node after a list).
// c.mu is held.
func (c *chaosChecker) checkSet(s *checkedSet, now time.Time, node string) {
	byNode := c.setPodsByNode(s)
	if node != "" {
		c.checkNoTwoPods(s, node, byNode[node])
	} else {
		for n, pods := range byNode {
			c.checkNoTwoPods(s, n, pods)
		}
	}
	c.checkBudget(s, byNode, now)
	c.checkIneligible(s, byNode, now)
}

// checkNoTwoPods, invariant 1: without surge one pod per node, terminating ones included; with surge
// at most two live pods, of two revisions.
func (c *chaosChecker) checkNoTwoPods(s *checkedSet, node string, pods []*corev1.Pod) {
	if node == "" {
		return
	}
	c.checks[invNoTwoPods]++
	if !s.surge {
		if len(pods) > 1 {
			c.violation(invNoTwoPods+"/"+s.name+"/"+node+"/"+podUIDs(pods),
				fmt.Sprintf("%s: %d pods on node %s (no surge):\n%s", s.name, len(pods), node, c.describe(pods, time.Now())))
		}
		return
	}
	var livePods []*corev1.Pod
	revisions := map[string]bool{}
	for _, p := range pods {
		if p.DeletionTimestamp == nil {
			livePods = append(livePods, p)
			revisions[p.Labels[hashLabel]] = true
		}
	}
	if len(livePods) > 2 || len(revisions) < len(livePods) {
		c.violation(invNoTwoPods+"/"+s.name+"/"+node+"/"+podUIDs(livePods),
			fmt.Sprintf("%s: %d live pods of %d revisions on node %s (surge):\n%s", s.name, len(livePods), len(revisions), node,
				c.describe(pods, time.Now())))
	}
}

// coverSlack is how long a pod must have been available before its node counts as covered. A pass
// plans at one instant and its deletes land a moment later: a pod that turned available in between
// (its Ready time has whole seconds, so up to a second early) was not available to the plan, which
// deletes an outdated pod that is not available at once, outside the budget, as upstream does. Seen
// in a long run: 29 first pods of a set turned available at the second the new template's pass
// deleted them.
const coverSlack = 2 * time.Second

// checkBudget, invariant 2: the settled eligible nodes without an available pod are at most
// maxUnavailable. A node is settled once it has been eligible (and existed) for the reconcile bound and
// then had an available pod of the set for coverSlack.
func (c *chaosChecker) checkBudget(s *checkedSet, byNode map[string][]*corev1.Pod, now time.Time) {
	c.checks[invBudget]++
	var unavailable []string
	for name, n := range c.nodes {
		if !n.exists || !n.eligible {
			continue
		}
		available, availableBefore := false, false
		for _, p := range byNode[name] {
			available = available || isAvailable(p, s.minReady, now)
			availableBefore = availableBefore || isAvailable(p, s.minReady, now.Add(-coverSlack))
		}
		// The pods the checker sees may lag the injector's record of the join by a moment: only an
		// available pod seen once the node's grace is over covers it, and only once it has been
		// available for coverSlack.
		settled := now.After(c.deadline(n.joined, now))
		if available {
			if settled && availableBefore {
				s.covered[name] = true
			}
			continue
		}
		if s.covered[name] {
			unavailable = append(unavailable, name)
		}
	}
	if len(unavailable) > s.maxUnavailable {
		var b strings.Builder
		for _, name := range sortedKeys(setOf(unavailable)) {
			fmt.Fprintf(&b, "  node %s joined %s ago:\n%s", name, now.Sub(c.nodes[name].joined).Round(time.Millisecond),
				c.describe(byNode[name], now))
		}
		c.violation(invBudget+"/"+s.name+"/"+strings.Join(sortedKeys(setOf(unavailable)), ","),
			fmt.Sprintf("%s: %d settled nodes without an available pod, maxUnavailable %d:\n%s", s.name, len(unavailable),
				s.maxUnavailable, b.String()))
	}
}

// checkIneligible, invariant 3: no live pod on a node that lost the label longer than a reconcile ago.
func (c *chaosChecker) checkIneligible(s *checkedSet, byNode map[string][]*corev1.Pod, now time.Time) {
	c.checks[invIneligible]++
	for name, n := range c.nodes {
		if !n.exists || n.eligible || n.left.IsZero() || !now.After(c.deadline(n.left, now)) {
			continue
		}
		for _, p := range byNode[name] {
			if p.DeletionTimestamp == nil {
				c.violation(invIneligible+"/"+string(p.UID), fmt.Sprintf("%s: pod %s still on node %s %s after it lost the label",
					s.name, p.Name, name, now.Sub(n.left).Round(time.Millisecond)))
			}
		}
	}
}

func podUIDs(pods []*corev1.Pod) string {
	uids := map[string]bool{}
	for _, p := range pods {
		uids[string(p.UID)] = true
	}
	return strings.Join(sortedKeys(uids), ",")
}

func setOf(s []string) map[string]bool {
	m := map[string]bool{}
	for _, v := range s {
		m[v] = true
	}
	return m
}

// describe says, of each pod, what the checker judged by: revision, phase, readiness (and since
// when), deletion, and when it was created, relative to now.
func (c *chaosChecker) describe(pods []*corev1.Pod, now time.Time) string {
	var b strings.Builder
	for _, p := range pods {
		readySince := "-"
		for _, cond := range p.Status.Conditions {
			if cond.Type == corev1.PodReady {
				readySince = fmt.Sprintf("%s %s ago", cond.Status, now.Sub(cond.LastTransitionTime.Time).Round(time.Millisecond))
			}
		}
		deleting := "-"
		if p.DeletionTimestamp != nil {
			deleting = now.Sub(p.DeletionTimestamp.Time).Round(time.Millisecond).String() + " ago"
		}
		fmt.Fprintf(&b, "    %s hash=%s phase=%s ready=%s deleting=%s created %s ago\n", p.Name, p.Labels[hashLabel], p.Status.Phase,
			readySince, deleting, now.Sub(p.CreationTimestamp.Time).Round(time.Millisecond))
	}
	return b.String()
}

// report is the closing note: faults injected, invariants checked, what the checker could not see.
func (c *chaosChecker) report(faults map[string]int, faultTime, convergence time.Duration, nodes int) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "chaos: %d nodes, %d sets, faults for %s\n", nodes, len(c.sets), faultTime.Round(time.Second))
	kinds := []string{"sigkill", "sigstop", "apiserver-restart", "compaction", "node-recreate", "label-flip"}
	fs := make([]string, 0, len(kinds))
	for _, f := range kinds {
		fs = append(fs, fmt.Sprintf("%s %d", f, faults[f]))
	}
	fmt.Fprintf(&b, "faults: %s (and %d set changes)\n", strings.Join(fs, ", "), faults["set-change"])
	total := 0
	invariants := []string{invNoTwoPods, invBudget, invIneligible, invConvergence}
	cs := make([]string, 0, len(invariants))
	for _, inv := range invariants {
		total += c.checks[inv]
		cs = append(cs, fmt.Sprintf("%s %d", inv, c.checks[inv]))
	}
	fmt.Fprintf(&b, "invariant checks: %d (%s), violations %d\n", total, strings.Join(cs, ", "), len(c.violations))
	fmt.Fprintf(&b, "pod events: %d; the checker's watches: %d, answered 410 Gone %d times, lists %d, blind %s in all\n", c.events,
		c.watches, c.expired, c.lists, c.blind.Round(10*time.Millisecond))
	fmt.Fprintf(&b, "longest stay of a pod on an ineligible node: %s (bound %s plus the time without API server or working leader); "+
		"convergence after the faults: %s\n", c.maxStay.Round(10*time.Millisecond), c.bound, convergence.Round(100*time.Millisecond))
	for _, v := range c.violations {
		fmt.Fprintf(&b, "VIOLATION %s\n", v)
	}
	return b.String()
}
