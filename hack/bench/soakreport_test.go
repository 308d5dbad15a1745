package main

import (
	"io"
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestSlope(t *testing.T) {
	for _, tc := range []struct {
		name   string
		xs, ys []float64
		want   float64
	}{
		{"a line", []float64{0, 1, 2, 3}, []float64{1, 3, 5, 7}, 2},
		{"flat with noise", []float64{0, 1, 2, 3}, []float64{5, 6, 5, 6}, 0.2},
		{"falling", []float64{0, 2, 4}, []float64{10, 9, 8}, -0.5},
		{"one point", []float64{1}, []float64{4}, 0},
		{"no spread in x", []float64{2, 2}, []float64{1, 5}, 0},
	} {
		if got := slope(tc.xs, tc.ys); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("%s: slope %v, want %v", tc.name, got, tc.want)
		}
	}
}

// samples are a 30-minute soak sampled every 10 s, with memory f(t) at t.
func samples(f func(t time.Duration) float64) []soakSample {
	var out []soakSample
	for t := time.Duration(0); t <= 30*time.Minute; t += 10 * time.Second {
		v := f(t)
		out = append(out, soakSample{at: t, rssMiB: v, anonMiB: v / 2, heapMiB: v / 2, heapGoalMiB: v / 3, goroutines: 100})
	}
	return out
}

func TestTrendLeavesOutTheWarmUpAndFindsALeak(t *testing.T) {
	// A warm-up from 50 to 100 MiB over the first 5 minutes, then flat: flat.
	warm := samples(func(t time.Duration) float64 { return 50 + 50*min(1, t.Minutes()/5) })
	tr := trendOf(warm, 5*time.Minute, func(s soakSample) float64 { return s.rssMiB })
	if !tr.flat() || math.Abs(tr.slopePer10m) > 1e-9 || tr.last != 100 {
		t.Errorf("warm-up then flat: %+v, want flat at 100", tr)
	}
	if tr.first >= 100 {
		t.Errorf("first window mean %v: want the warm-up in it", tr.first)
	}
	// 1 MiB a minute on 100 MiB: 10%% per 10 minutes, a leak.
	leak := samples(func(t time.Duration) float64 { return 100 + t.Minutes() })
	tr = trendOf(leak, 5*time.Minute, func(s soakSample) float64 { return s.rssMiB })
	if tr.flat() || math.Abs(tr.slopePer10m-10) > 1e-6 {
		t.Errorf("1 MiB a minute: %+v, want a slope of 10 MiB per 10 min, not flat", tr)
	}
	// Falling memory is flat.
	fall := samples(func(t time.Duration) float64 { return 200 - t.Minutes() })
	if tr = trendOf(fall, 5*time.Minute, func(s soakSample) float64 { return s.rssMiB }); !tr.flat() {
		t.Errorf("falling: %+v, want flat", tr)
	}
}

func TestWithinBand(t *testing.T) {
	for _, tc := range []struct {
		first, last float64
		want        bool
	}{{100, 109, true}, {100, 91, true}, {100, 111, false}, {100, 89, false}, {0, 0, false}} {
		if got := (trend{first: tc.first, last: tc.last}).withinBand(0.1); got != tc.want {
			t.Errorf("%v -> %v: within 10%% %v, want %v", tc.first, tc.last, got, tc.want)
		}
	}
}

func TestQuietWritesLeaveOutRollouts(t *testing.T) {
	s := []soakSample{
		{at: 0, writes: 0, nodeEvents: 0},
		{at: 10 * time.Second, writes: 30, statusWrites: 8, req: map[string]float64{"GET": 7, "POST": 20, "PATCH": 5, "DELETE": 5},
			podCreates: 5, podDeletes: 5, nodeEvents: 10},
		// A rollout starts and is under way: its writes do not count.
		{at: 20 * time.Second, writes: 500, podCreates: 100, podDeletes: 100, nodeEvents: 20, rolloutsStarted: 1, rollingOut: true},
		{at: 30 * time.Second, writes: 900, podCreates: 200, podDeletes: 200, nodeEvents: 30, rolloutsStarted: 1},
		{at: 40 * time.Second, writes: 920, podCreates: 205, podDeletes: 204, nodeEvents: 40, rolloutsStarted: 1},
		// A rollout starts and completes between two samples: left out too.
		{at: 50 * time.Second, writes: 1400, podCreates: 300, podDeletes: 300, nodeEvents: 50, rolloutsStarted: 2},
	}
	q := quietWrites(s)
	if q.writes != 50 || q.events != 20 || q.podWrites != 19 || q.statusWrites != 8 || q.covered != 20*time.Second {
		t.Errorf("quiet writes %+v: want 50 writes, 19 pod writes, 20 events over 20 s", q)
	}
	if q.byMethod["POST"] != 20 || q.byMethod["GET"] != 0 {
		t.Errorf("by method %v: want the first interval's writes", q.byMethod)
	}
	if q.perEvent() != 2.5 {
		t.Errorf("per event %v, want 2.5", q.perEvent())
	}
}

func TestPrintSoakVerdicts(t *testing.T) {
	flat := samples(func(time.Duration) float64 { return 100 })
	for i := range flat {
		flat[i].nodeEvents = i * 10
		flat[i].writes = float64(i * 40)
	}
	r := soakResult{nodes: 1000, sets: 3, duration: 30 * time.Minute, window: 5 * time.Minute, churnRate: 1,
		events: map[churnKind]int{churnDelete: 5}, samples: flat, rollouts: []rolloutRun{{set: "plain", took: 40 * time.Second}}}
	// A rollout's goroutines for a moment are not a leak.
	for _, i := range []int{len(flat) - 3, len(flat) - 2} {
		flat[i].goroutines, flat[i].rollingOut = 400, true
	}
	var out strings.Builder
	if failed := printSoak(&out, r); len(failed) > 0 {
		t.Fatalf("flat soak failed %v:\n%s", failed, out.String())
	}
	for _, want := range []string{"| RSS | 100.0 MiB | 100.0 MiB | +0.00 MiB (+0.0%) |", "writes per node event, outside rollouts", ": 4.00 ("} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}

	leak := samples(func(t time.Duration) float64 { return 100 + t.Minutes() })
	for i := range leak {
		leak[i].goroutines = 100 + float64(i)
		leak[i].nodeEvents = i * 10
		leak[i].writes = float64(i * 100)
	}
	r.samples = leak
	r.rollouts = append(r.rollouts, rolloutRun{set: "surge"})
	failed := printSoak(io.Discard, r)
	for _, want := range []string{"RSS", "Go heap in use", "GC heap goal (twice the live heap)", "goroutines between rollouts",
		"writes per node event", "rollouts"} {
		if !slices.Contains(failed, want) {
			t.Errorf("leaking soak: %q passed (failed: %v)", want, failed)
		}
	}
}

func TestWriteSamples(t *testing.T) {
	var out strings.Builder
	err := writeSamples(&out, []soakSample{{at: 10 * time.Second, rssMiB: 110.04, anonMiB: 70, heapMiB: 50, heapGoalMiB: 60,
		goroutines: 117, writes: 3, statusWrites: 2, nodeEvents: 9, rolloutsStarted: 1, rollingOut: true}})
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || lines[1] != "10,110.0,70.0,50.0,60.0,117,3,0,0,0,2,9,1,true" {
		t.Errorf("csv:\n%s", out.String())
	}
	if got, want := len(strings.Split(lines[0], ",")), len(strings.Split(lines[1], ",")); got != want {
		t.Errorf("%d columns in the header, %d in a row", got, want)
	}
}
