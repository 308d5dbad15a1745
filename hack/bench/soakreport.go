package main

// The soak's figures (--soak): from the samples taken during the churn, is the controller's memory
// flat, and how many writes does a node event cost. Pure: samples in, table and verdicts out.

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// soakSample is what the soak reads every soakSampleEvery: the controller's memory, and its counters
// so far.
type soakSample struct {
	at      time.Duration // since the churn began.
	rssMiB  float64       // VmRSS.
	anonMiB float64       // RssAnon: VmRSS less the pages of the binary and other files.
	heapMiB float64       // go_memstats_heap_inuse_bytes.
	// heapGoalMiB is go_gc_heap_goal_bytes: the heap size the next GC aims at, twice the live heap the
	// last GC found (GOGC=100). It follows the live heap, not the garbage between two GCs.
	heapGoalMiB float64
	goroutines  float64            // go_goroutines.
	writes      float64            // the controller's API writes (POST, PUT, PATCH, DELETE) so far.
	req         map[string]float64 // the controller's API requests so far, by method.
	podCreates  float64            // nodeagentset_pods_created_total.
	podDeletes  float64            // nodeagentset_pods_deleted_total, every reason.
	// rolloutDeletes are the pod deletions of rollouts (reasons Outdated and SurgeReplaced).
	rolloutDeletes float64
	// statusWrites are the writes to the sets' status so far, from the API server's metrics.
	statusWrites float64
	nodeEvents   int // node events injected so far.
	// rolloutsStarted counts the rollouts started so far; rollingOut is whether one was under way.
	rolloutsStarted int
	rollingOut      bool
}

// Flatness limits: a figure is flat when, after the first window (the warm-up), it grows by at most
// maxGrowthPer10Min of its mean every ten minutes (least squares), and goroutines also end within
// goroutineBand of where they started.
const (
	maxGrowthPer10Min = 0.05
	goroutineBand     = 0.10
)

// trend is one figure over the soak: the means of its first and last window, and its least-squares
// slope after the first window, per ten minutes and as a share of its mean there.
type trend struct {
	first, last  float64
	slopePer10m  float64
	growthPer10m float64 // slopePer10m / mean after the warm-up.
}

// slope is the least-squares slope of ys over xs; 0 for fewer than two distinct xs.
func slope(xs, ys []float64) float64 {
	n := float64(len(xs))
	if len(xs) < 2 || len(xs) != len(ys) {
		return 0
	}
	var sx, sy, sxx, sxy float64
	for i := range xs {
		sx += xs[i]
		sy += ys[i]
		sxx += xs[i] * xs[i]
		sxy += xs[i] * ys[i]
	}
	d := n*sxx - sx*sx
	if d == 0 {
		return 0
	}
	return (n*sxy - sx*sy) / d
}

// mean of xs; 0 for none.
func mean(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	t := 0.0
	for _, x := range xs {
		t += x
	}
	return t / float64(len(xs))
}

// trendOf is the trend of the figure f over samples, with window the length of the first and last
// windows (the first is also the warm-up the slope leaves out).
func trendOf(samples []soakSample, window time.Duration, f func(soakSample) float64) trend {
	if len(samples) == 0 {
		return trend{}
	}
	end := samples[len(samples)-1].at
	var first, last, xs, ys []float64
	for _, s := range samples {
		v := f(s)
		if s.at <= window {
			first = append(first, v)
		}
		if s.at >= end-window {
			last = append(last, v)
		}
		if s.at >= window {
			xs, ys = append(xs, s.at.Minutes()/10), append(ys, v)
		}
	}
	t := trend{first: mean(first), last: mean(last), slopePer10m: slope(xs, ys)}
	if m := mean(ys); m != 0 {
		t.growthPer10m = t.slopePer10m / m
	}
	return t
}

// betweenRollouts are the samples taken with no rollout under way: a rollout's pod writes run on
// goroutines of their own (a few hundred for a moment), which say nothing about a leak.
func betweenRollouts(samples []soakSample) []soakSample {
	out := make([]soakSample, 0, len(samples))
	for _, s := range samples {
		if !s.rollingOut {
			out = append(out, s)
		}
	}
	return out
}

// flat: the figure grows by at most maxGrowthPer10Min of its mean per ten minutes after the warm-up.
func (t trend) flat() bool { return t.growthPer10m <= maxGrowthPer10Min }

// withinBand: the last window's mean is within band of the first's.
func (t trend) withinBand(band float64) bool {
	return t.first > 0 && t.last >= t.first*(1-band) && t.last <= t.first*(1+band)
}

// churnWrites are the controller's writes and the node events in the intervals between two samples
// with no rollout under way at either end nor started in between: what node events alone cost.
type churnWrites struct {
	writes, podWrites, statusWrites float64
	byMethod                        map[string]float64
	events                          int
	covered                         time.Duration // the length of those intervals.
}

func quietWrites(samples []soakSample) churnWrites {
	c := churnWrites{byMethod: map[string]float64{}}
	for i := 1; i < len(samples); i++ {
		a, b := samples[i-1], samples[i]
		if a.rollingOut || b.rollingOut || a.rolloutsStarted != b.rolloutsStarted {
			continue
		}
		c.writes += b.writes - a.writes
		for _, m := range writeMethods {
			c.byMethod[m] += b.req[m] - a.req[m]
		}
		c.podWrites += b.podCreates - a.podCreates + b.podDeletes - a.podDeletes
		c.statusWrites += b.statusWrites - a.statusWrites
		c.events += b.nodeEvents - a.nodeEvents
		c.covered += b.at - a.at
	}
	return c
}

// writeMethods are the methods writes counts.
var writeMethods = []string{"POST", "PUT", "PATCH", "DELETE"}

func (c churnWrites) perEvent() float64 {
	if c.events == 0 {
		return 0
	}
	return c.writes / float64(c.events)
}

// maxWritesPerEvent bounds the controller's writes per node event: for each set the event concerns,
// a pod write, the Event that reports it and a status write.
func maxWritesPerEvent(sets int) float64 { return 3 * float64(sets) }

// rolloutRun is one rollout of the soak: which set, how long until every eligible node ran a pod of
// the new template (0 when it did not get there).
type rolloutRun struct {
	set  string
	took time.Duration
}

// soakResult is everything the soak's table shows.
type soakResult struct {
	nodes, sets int
	duration    time.Duration
	window      time.Duration
	churnRate   float64
	events      map[churnKind]int
	samples     []soakSample
	rollouts    []rolloutRun
	converged   error  // nil when every set converged after the churn.
	load        string // the machine's load averages, at the start and the end.
	commit      string
}

// printSoak prints the soak's table and returns the criteria that failed.
func printSoak(w io.Writer, r soakResult) []string {
	var failed []string
	verdict := func(name string, ok bool) string {
		if ok {
			return "PASS"
		}
		failed = append(failed, name)
		return "FAIL"
	}
	s := r.samples
	rss := trendOf(s, r.window, func(x soakSample) float64 { return x.rssMiB })
	anon := trendOf(s, r.window, func(x soakSample) float64 { return x.anonMiB })
	heap := trendOf(s, r.window, func(x soakSample) float64 { return x.heapMiB })
	goal := trendOf(s, r.window, func(x soakSample) float64 { return x.heapGoalMiB })
	gor := trendOf(betweenRollouts(s), r.window, func(x soakSample) float64 { return x.goroutines })
	pairs := float64(r.nodes * r.sets)
	_, _ = fmt.Fprintf(w, "\nSoak: %d nodes, %d sets, %s of churn at %.1f node events/s, commit %s, load %s\n\n",
		r.nodes, r.sets, r.duration, r.churnRate, r.commit, r.load)
	total := 0
	for _, n := range r.events {
		total += n
	}
	_, _ = fmt.Fprintf(w, "node events: %d (delete %d, create %d, re-create %d, label flip %d)\n\n", total,
		r.events[churnDelete], r.events[churnCreate], r.events[churnRecreate], r.events[churnFlip])
	_, _ = fmt.Fprintf(w, "| figure | first %s | last %s | slope after the first %s, per 10 min | criterion | verdict |\n|---|---:|---:|---:|---|---|\n",
		r.window, r.window, r.window)
	row := func(name string, t trend, unit string, criterion string, ok bool) {
		v := "(shown)"
		if criterion != "" {
			v = verdict(name, ok)
		}
		_, _ = fmt.Fprintf(w, "| %s | %.1f%s | %.1f%s | %+.2f%s (%+.1f%%) | %s | %s |\n", name, t.first, unit, t.last, unit,
			t.slopePer10m, unit, 100*t.growthPer10m, criterion, v)
	}
	growth := fmt.Sprintf("slope at most %+.0f%%", 100*maxGrowthPer10Min)
	row("RSS", rss, " MiB", growth, rss.flat())
	row("RSS, anonymous (less the binary's pages)", anon, " MiB", "", true)
	row("Go heap in use", heap, " MiB", growth, heap.flat())
	row("GC heap goal (twice the live heap)", goal, " MiB", growth, goal.flat())
	row("goroutines between rollouts", gor, "", fmt.Sprintf("last within ±%.0f%% of first", 100*goroutineBand), gor.withinBand(goroutineBand))
	_, _ = fmt.Fprintf(w, "| live heap per set and node | %.2f KiB | %.2f KiB | | (heap goal / 2 / %d sets / %d nodes) | |\n",
		goal.first*1024/2/pairs, goal.last*1024/2/pairs, r.sets, r.nodes)

	q := quietWrites(s)
	limit := maxWritesPerEvent(r.sets)
	methods := make([]string, 0, len(writeMethods))
	for _, m := range writeMethods {
		methods = append(methods, fmt.Sprintf("%s %.0f", m, q.byMethod[m]))
	}
	_, _ = fmt.Fprintf(w, "\nwrites per node event, outside rollouts (%s of %s): %.2f (%.0f writes: %s; "+
		"of them %.0f pod creates and deletes, %.0f status writes, "+
		"the rest Events and revisions; for %d events); "+
		"bound %.0f (a pod write, its Event and a status write per set): %s\n",
		q.covered.Round(time.Second), r.duration, q.perEvent(), q.writes, strings.Join(methods, ", "), q.podWrites, q.statusWrites,
		q.events, limit,
		verdict("writes per node event", q.events > 0 && q.perEvent() <= limit))
	if len(s) > 0 {
		last := s[len(s)-1]
		_, _ = fmt.Fprintf(w, "whole soak: %.0f writes, %.0f pod creates, %.0f pod deletes (%.0f of them by rollouts)\n",
			last.writes-s[0].writes, last.podCreates-s[0].podCreates, last.podDeletes-s[0].podDeletes, last.rolloutDeletes-s[0].rolloutDeletes)
	}

	done, worst := 0, time.Duration(0)
	var sum time.Duration
	for _, ro := range r.rollouts {
		if ro.took > 0 {
			done++
			sum += ro.took
			worst = max(worst, ro.took)
		}
	}
	avg := time.Duration(0)
	if done > 0 {
		avg = sum / time.Duration(done)
	}
	_, _ = fmt.Fprintf(w, "rollouts: %d started, %d completed, mean %.1f s, longest %.1f s: %s\n", len(r.rollouts), done,
		avg.Seconds(), worst.Seconds(), verdict("rollouts", done == len(r.rollouts) && done > 0))
	for _, ro := range r.rollouts {
		_, _ = fmt.Fprintf(w, "  - %s %.1f s\n", ro.set, ro.took.Seconds())
	}
	msg := "every set converged: each eligible node runs one available pod of the current template, no pod elsewhere"
	if r.converged != nil {
		msg = r.converged.Error()
	}
	_, _ = fmt.Fprintf(w, "convergence after the churn: %s: %s\n", msg, verdict("convergence", r.converged == nil))
	return failed
}

// writeSamples writes the samples as CSV, one row a sample, for plotting.
func writeSamples(w io.Writer, samples []soakSample) error {
	const header = "seconds,rss_mib,rss_anon_mib,heap_inuse_mib,heap_goal_mib,goroutines," +
		"writes,pod_creates,pod_deletes,rollout_deletes,status_writes,node_events,rollouts_started,rolling_out"
	if _, err := fmt.Fprintln(w, header); err != nil {
		return err
	}
	for _, s := range samples {
		if _, err := fmt.Fprintf(w, "%.0f,%.1f,%.1f,%.1f,%.1f,%.0f,%.0f,%.0f,%.0f,%.0f,%.0f,%d,%d,%t\n", s.at.Seconds(), s.rssMiB, s.anonMiB, s.heapMiB,
			s.heapGoalMiB, s.goroutines,
			s.writes, s.podCreates, s.podDeletes, s.rolloutDeletes, s.statusWrites, s.nodeEvents, s.rolloutsStarted, s.rollingOut); err != nil {
			return err
		}
	}
	return nil
}
