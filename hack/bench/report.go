package main

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"time"
)

// rolloutBudget is the trials' maxUnavailable of 10% on n nodes, rounded up as upstream scales it.
func rolloutBudget(n int) int { return (n + 9) / 10 }

// checkInvariants fails the run when a controller broke a rule no figure excuses: more nodes without
// a Ready pod than maxUnavailable allows, or two pods on a node without surge.
func checkInvariants(c config, res map[string][]result) error {
	budget := rolloutBudget(c.nodes)
	var errs []error
	for _, kind := range []string{kindDS, kindNAS} {
		for i, r := range res[kind] {
			if r.maxUnavail > budget {
				errs = append(errs, fmt.Errorf("%s #%d: %d nodes without a Ready pod during the rollout, budget %d", kind, i+1, r.maxUnavail, budget))
			}
			if r.maxOnNode > 1 {
				errs = append(errs, fmt.Errorf("%s #%d: %d pods on one node without surge", kind, i+1, r.maxOnNode))
			}
		}
	}
	return errors.Join(errs...)
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func maxInt(xs []int) int {
	m := 0
	for _, x := range xs {
		m = max(m, x)
	}
	return m
}

// peakRSS is each controller's peak RSS (VmHWM, MiB) by kind: before the first trial (the nodes, and
// the unrelated pods when there are some, in its cache) and at the end of the run.
type peakRSS struct {
	before, end map[string]float64
}

func printTable(w io.Writer, c config, res map[string][]result, floors []floorResult, idle map[string]idleResult, rss peakRSS, took time.Duration) {
	type row struct {
		name string
		f    func(r result) float64
		max  bool
	}
	methods := []string{"GET", "POST", "PUT", "PATCH", "DELETE"}
	rows := []row{
		{"every node has a pod (created) (s)", func(r result) float64 { return r.created }, false},
		{"coverage (s)", func(r result) float64 { return r.cover }, false},
		{"rollout at 10% (s)", func(r result) float64 { return r.rollout }, false},
		{"max nodes without a Ready pod during rollout (budget " + strconv.Itoa((c.nodes+9)/10) + ")", func(r result) float64 { return float64(r.maxUnavail) }, true},
		{"max pods on one node", func(r result) float64 { return float64(r.maxOnNode) }, true},
		{"coverage: API writes per node", func(r result) float64 { return writes(r.coverReq) / float64(c.nodes) }, false},
		{"rollout: API writes per node", func(r result) float64 { return writes(r.rolloutReq) / float64(c.nodes) }, false},
	}
	for _, m := range methods {
		rows = append(rows, row{"requests " + m + " (coverage+rollout)", func(r result) float64 { return r.coverReq[m] + r.rolloutReq[m] }, false})
	}
	rows = append(rows,
		row{"CPU seconds (trial)", func(r result) float64 { return r.cpu }, false},
		row{"peak RSS (MiB, process lifetime)", func(r result) float64 { return r.hwm }, true},
	)
	fmt.Fprintf(w, "\nNodeAgentSet vs DaemonSet: %d nodes, %d pair(s), mode %s, %d unrelated pods per node, run took %s\n\n",
		c.nodes, c.pairs, c.mode, c.unrelatedPerNode, took.Round(time.Second))
	fmt.Fprintf(w, "| metric (median of %d; max where marked) | DaemonSet (kcm) | NodeAgentSet | ratio NAS/DS |\n|---|---:|---:|---:|\n", c.pairs)
	for _, r := range rows {
		var a, b float64
		ai := make([]int, 0, len(res[kindDS]))
		bi := make([]int, 0, len(res[kindNAS]))
		af := make([]float64, 0, len(res[kindDS]))
		bf := make([]float64, 0, len(res[kindNAS]))
		for _, x := range res[kindDS] {
			af = append(af, r.f(x))
			ai = append(ai, int(r.f(x)))
		}
		for _, x := range res[kindNAS] {
			bf = append(bf, r.f(x))
			bi = append(bi, int(r.f(x)))
		}
		name := r.name
		if r.max {
			a, b = float64(maxInt(ai)), float64(maxInt(bi))
			name += " (max)"
		} else {
			a, b = median(af), median(bf)
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", name, num(a), num(b), ratio(b, a))
	}
	for _, m := range append([]string{"total"}, methods...) {
		get := func(k string) float64 {
			if m == "total" {
				t := 0.0
				for _, v := range idle[k].req {
					t += v
				}
				return t
			}
			return idle[k].req[m]
		}
		a, b := get(kindDS), get(kindNAS)
		fmt.Fprintf(w, "| idle %s: requests %s | %s | %s | %s |\n", c.idle, m, num(a), num(b), ratio(b, a))
	}
	a, b := writes(idle[kindDS].req), writes(idle[kindNAS].req)
	fmt.Fprintf(w, "| idle %s: writes | %s | %s | %s |\n", c.idle, num(a), num(b), ratio(b, a))
	fmt.Fprintf(w, "| idle %s: CPU seconds | %s | %s | %s |\n", c.idle, num(idle[kindDS].cpu), num(idle[kindNAS].cpu), ratio(idle[kindNAS].cpu, idle[kindDS].cpu))
	fmt.Fprintf(w, "| peak RSS before the first trial, %d unrelated pods (MiB) | %s | %s | %s |\n", c.nodes*c.unrelatedPerNode,
		num(rss.before[kindDS]), num(rss.before[kindNAS]), ratio(rss.before[kindNAS], rss.before[kindDS]))
	fmt.Fprintf(w, "| peak RSS at the end (MiB) | %s | %s | %s |\n", num(rss.end[kindDS]), num(rss.end[kindNAS]), ratio(rss.end[kindNAS], rss.end[kindDS]))
	printFloor(w, c, res, floors)
	fmt.Fprintln(w)
	for _, kind := range []string{kindDS, kindNAS} {
		for i, r := range res[kind] {
			fmt.Fprintf(w, "- %s #%d: every node has a pod %.1f s, coverage %.1f s, rollout %.1f s, max unavailable %d, max pods/node %d, writes %.0f + %.0f\n",
				kind, i+1, r.created, r.cover, r.rollout, r.maxUnavail, r.maxOnNode, writes(r.coverReq), writes(r.rolloutReq))
		}
	}
}

func num(x float64) string {
	if x == float64(int64(x)) {
		return strconv.FormatInt(int64(x), 10)
	}
	return strconv.FormatFloat(x, 'f', 2, 64)
}

func ratio(b, a float64) string {
	if a == 0 {
		if b == 0 {
			return "-"
		}
		return "inf"
	}
	return strconv.FormatFloat(b/a, 'f', 2, 64)
}

// printFloor prints the reference figures and each controller's coverage against them.
func printFloor(w io.Writer, c config, res map[string][]result, floors []floorResult) {
	created := make([]float64, 0, len(floors))
	seen := make([]float64, 0, len(floors))
	ready := make([]float64, 0, len(floors))
	rolled := make([]float64, 0, len(floors))
	deleted := make([]float64, 0, len(floors))
	gone := make([]float64, 0, len(floors))
	for _, f := range floors {
		created = append(created, f.created)
		seen = append(seen, f.seen)
		ready = append(ready, f.ready)
		rolled = append(rolled, f.rollout)
		deleted = append(deleted, f.deleted)
		gone = append(gone, f.gone)
	}
	fc, fs, fr, fd, fg, fo := median(created), median(seen), median(ready), median(deleted), median(gone), median(rolled)
	fmt.Fprintf(w, "\nReference, median of %d: an unthrottled client (%d requests in flight) creates the %d pods in %s s "+
		"(API server create throughput %s pods/s), and the bench's pod watch has seen every one at %s s; "+
		"kube-scheduler and kwok have every one Ready at %s s. "+
		"It deletes them in %s s (%s pods/s); kwok has every one gone at %s s. "+
		"A rollout does the same work (delete every pod, create and run its replacement) in steps: "+
		"gone + Ready, %s s, is the least any rollout can take here. "+
		"The same client rolls its pods out at the trials' budget (%d nodes at a time; nothing spent on deciding, "+
		"writes at most every %s as the controller's passes) in %s s (%s x gone + Ready): a rollout at that budget.\n\n",
		len(floors), floorWorkers, c.nodes, num(fc), num(float64(c.nodes)/fc), num(fs), num(fr), num(fd), num(float64(c.nodes)/fd), num(fg), num(fg+fr),
		rolloutBudget(c.nodes), c.referenceWindow, num(fo), ratio(fo, fg+fr))
	fmt.Fprintf(w, "| vs the reference (medians) | DaemonSet (kcm) | NodeAgentSet |\n|---|---:|---:|\n")
	get := func(kind string, f func(result) float64) float64 {
		xs := make([]float64, 0, len(res[kind]))
		for _, r := range res[kind] {
			xs = append(xs, f(r))
		}
		return median(xs)
	}
	cr := func(r result) float64 { return r.created }
	cv := func(r result) float64 { return r.cover }
	fmt.Fprintf(w, "| every node has a pod / reference all created | %s | %s |\n", ratio(get(kindDS, cr), fc), ratio(get(kindNAS, cr), fc))
	// The trials' "every node has a pod" is when the bench's watch showed the last pod: against the
	// reference's pods as the same watch showed them, the same clock on both sides.
	fmt.Fprintf(w, "| every node has a pod / reference all seen by the same watch | %s | %s |\n", ratio(get(kindDS, cr), fs), ratio(get(kindNAS, cr), fs))
	fmt.Fprintf(w, "| coverage / reference all Ready | %s | %s |\n", ratio(get(kindDS, cv), fr), ratio(get(kindNAS, cv), fr))
	ro := func(r result) float64 { return r.rollout }
	fmt.Fprintf(w, "| rollout / reference gone + Ready | %s | %s |\n", ratio(get(kindDS, ro), fg+fr), ratio(get(kindNAS, ro), fg+fr))
	fmt.Fprintf(w, "| rollout / reference rollout at the same budget | %s | %s |\n", ratio(get(kindDS, ro), fo), ratio(get(kindNAS, ro), fo))
	printPairRatios(w, res, floors)
}

// pairRatio is one row of printPairRatios: a trial's figure over its own pair's reference figure.
type pairRatio struct {
	name  string
	trial func(result) float64
	floor func(floorResult) float64
}

// printPairRatios sets each trial against the reference measured just before it, in its own pair,
// and prints the median and the range of those ratios. The table above divides the trials' median by
// the references' median; when the cluster is quicker in one pair than in the next, the two medians
// can come from different pairs, and only a trial's own pair shares its conditions. Trial i of each
// kind belongs to pair i, as floors[i] does (bench.pairs).
func printPairRatios(w io.Writer, res map[string][]result, floors []floorResult) {
	if len(floors) < 2 {
		return
	}
	rows := []pairRatio{
		{"every node has a pod / reference all created", func(r result) float64 { return r.created }, func(f floorResult) float64 { return f.created }},
		{"every node has a pod / reference all seen by the same watch", func(r result) float64 { return r.created }, func(f floorResult) float64 { return f.seen }},
		{"coverage / reference all Ready", func(r result) float64 { return r.cover }, func(f floorResult) float64 { return f.ready }},
		{"rollout / reference gone + Ready", func(r result) float64 { return r.rollout }, func(f floorResult) float64 { return f.gone + f.ready }},
		{"rollout / reference rollout at the same budget", func(r result) float64 { return r.rollout }, func(f floorResult) float64 { return f.rollout }},
	}
	fmt.Fprintf(w, "\n| vs the reference of the same pair: median of the %d pairs' ratios (range) | DaemonSet (kcm) | NodeAgentSet |\n", len(floors))
	fmt.Fprintf(w, "|---|---:|---:|\n")
	for _, row := range rows {
		fmt.Fprintf(w, "| %s | %s | %s |\n", row.name, pairSummary(res[kindDS], floors, row), pairSummary(res[kindNAS], floors, row))
	}
}

// pairSummary is "median (min-max)" of trials[i]'s figure over floors[i]'s, or "-" without trials.
func pairSummary(trials []result, floors []floorResult, row pairRatio) string {
	var xs []float64
	for i, r := range trials {
		if i < len(floors) && row.floor(floors[i]) > 0 {
			xs = append(xs, row.trial(r)/row.floor(floors[i]))
		}
	}
	if len(xs) == 0 {
		return "-"
	}
	lo, hi := xs[0], xs[0]
	for _, x := range xs {
		lo, hi = min(lo, x), max(hi, x)
	}
	return fmt.Sprintf("%.2f (%.2f-%.2f)", median(xs), lo, hi)
}
