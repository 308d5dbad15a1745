package main

import (
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// podTimes is when the tracker's watch first saw each step of one pod's life.
type podTimes struct {
	node, image string
	created     time.Time // the pod's first event.
	bound       time.Time // spec.nodeName set.
	ready       time.Time // Ready, before any deletion.
	deleting    time.Time // deletionTimestamp set (or the pod gone without one).
	gone        time.Time
}

// stageRecorder keeps podTimes for every pod of a trial, for --timeline's breakdown of a rollout.
// The tracker calls observe under its lock.
type stageRecorder struct {
	pods map[types.UID]*podTimes
}

func (s *stageRecorder) reset() { s.pods = map[types.UID]*podTimes{} }

// observe records what an event of pod p shows, at now; gone when the event is its deletion.
func (s *stageRecorder) observe(p *corev1.Pod, gone bool, now time.Time) {
	if s.pods == nil {
		s.reset()
	}
	pt := s.pods[p.UID]
	if pt == nil {
		pt = &podTimes{created: now, image: podImage(p)}
		s.pods[p.UID] = pt
	}
	if p.Spec.NodeName != "" && pt.bound.IsZero() {
		pt.node, pt.bound = p.Spec.NodeName, now
	}
	if pt.ready.IsZero() && podReady(p) {
		pt.ready = now
	}
	if pt.deleting.IsZero() && (p.DeletionTimestamp != nil || gone) {
		pt.deleting = now
	}
	if gone {
		pt.gone = now
	}
}

// rolloutStages is where a rollout to image img spent each node's time, from the pods' podTimes:
// how long the simulated kubelet took to finish a deleted pod, how long the controller took to
// create the replacement once the old pod was gone, how long the scheduler took to bind it and the
// kubelet to make it Ready, and how long the controller took to delete the next old pod once a new one
// turned Ready and freed a place in the budget (the k-th new pod Ready against the (k+budget)-th
// delete).
func rolloutStages(pods []*podTimes, img string, budget int) []stageFigure {
	var deleteGone, goneCreate, createBind, bindReady, slotDelete []time.Duration
	var deletes, readies []time.Time
	var news []*podTimes
	oldOn := map[string]*podTimes{}
	for _, p := range pods {
		switch {
		case p.image == img:
			news = append(news, p)
			continue
		case p.node != "":
			oldOn[p.node] = p
		}
		if !p.deleting.IsZero() {
			deletes = append(deletes, p.deleting)
			if !p.gone.IsZero() {
				deleteGone = append(deleteGone, p.gone.Sub(p.deleting))
			}
		}
	}
	for _, p := range news {
		if old := oldOn[p.node]; old != nil && !old.gone.IsZero() && !p.created.Before(old.gone) {
			goneCreate = append(goneCreate, p.created.Sub(old.gone))
		}
		if !p.bound.IsZero() {
			createBind = append(createBind, p.bound.Sub(p.created))
			if !p.ready.IsZero() {
				bindReady = append(bindReady, p.ready.Sub(p.bound))
			}
		}
		if !p.ready.IsZero() {
			readies = append(readies, p.ready)
		}
	}
	slices.SortFunc(deletes, time.Time.Compare)
	slices.SortFunc(readies, time.Time.Compare)
	for k := budget; k < len(deletes) && k-budget < len(readies); k++ {
		if d := deletes[k].Sub(readies[k-budget]); d >= 0 {
			slotDelete = append(slotDelete, d)
		}
	}
	return []stageFigure{
		figure("old pod deleted -> gone (kubelet)", deleteGone),
		figure("old pod gone -> new pod created (controller)", goneCreate),
		figure("new pod created -> bound (scheduler)", createBind),
		figure("new pod bound -> Ready (kubelet)", bindReady),
		figure("a new pod Ready -> the next delete (controller)", slotDelete),
	}
}

// coverageStages is where a coverage with image img, started at t0 and done at end, spent its time:
// when its pods were created (by the controller, or by the reference client), how long the scheduler
// took to bind each and the kubelet to make it Ready, when they turned Ready, and how long after the
// last one turned Ready the coverage was done (for a controller, when its status said so).
func coverageStages(pods []*podTimes, img string, t0, end time.Time) []stageFigure {
	var created, createBind, bindReady, ready []time.Duration
	var last time.Time
	for _, p := range pods {
		if p.image != img {
			continue
		}
		created = append(created, p.created.Sub(t0))
		if !p.bound.IsZero() {
			createBind = append(createBind, p.bound.Sub(p.created))
			if !p.ready.IsZero() {
				bindReady = append(bindReady, p.ready.Sub(p.bound))
			}
		}
		if !p.ready.IsZero() {
			ready = append(ready, p.ready.Sub(t0))
			if p.ready.After(last) {
				last = p.ready
			}
		}
	}
	figures := []stageFigure{
		figure("start -> pod created", created),
		figure("pod created -> bound (scheduler)", createBind),
		figure("pod bound -> Ready (kubelet)", bindReady),
		figure("start -> pod Ready", ready),
	}
	if !last.IsZero() && !end.Before(last) {
		figures = append(figures, figure("last pod Ready -> done", []time.Duration{end.Sub(last)}))
	}
	return figures
}

// stageFigure summarizes one stage's durations.
type stageFigure struct {
	name                string
	n                   int
	mean, p50, p90, max time.Duration
}

func figure(name string, ds []time.Duration) stageFigure {
	f := stageFigure{name: name, n: len(ds)}
	if len(ds) == 0 {
		return f
	}
	slices.Sort(ds)
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	f.mean, f.p50, f.p90, f.max = sum/time.Duration(len(ds)), ds[len(ds)/2], ds[len(ds)*9/10], ds[len(ds)-1]
	return f
}

func (f stageFigure) String() string {
	if f.n == 0 {
		return fmt.Sprintf("%s: none", f.name)
	}
	if f.n == 1 {
		return fmt.Sprintf("%s: %.3fs", f.name, f.mean.Seconds())
	}
	return fmt.Sprintf("%s: mean %.3fs, p50 %.3fs, p90 %.3fs, max %.3fs (%d)", f.name, f.mean.Seconds(), f.p50.Seconds(),
		f.p90.Seconds(), f.max.Seconds(), f.n)
}

// logRolloutStages logs rolloutStages of the trial's pods when --timeline is set.
func (b *bench) logRolloutStages(kind, img string) {
	b.logStages(kind+" rollout, where each node's time went", func(pods []*podTimes) []stageFigure {
		return rolloutStages(pods, img, rolloutBudget(b.c.nodes))
	})
}

// logCoverageStages logs coverageStages of the tracked pods when --timeline is set.
func (b *bench) logCoverageStages(kind, img string, t0, end time.Time) {
	b.logStages(kind+" coverage, where its time went", func(pods []*podTimes) []stageFigure {
		return coverageStages(pods, img, t0, end)
	})
}

// logStages logs the stages stagesOf finds in the tracked pods' podTimes when --timeline is set.
func (b *bench) logStages(title string, stagesOf func([]*podTimes) []stageFigure) {
	if !b.c.timeline {
		return
	}
	b.tr.mu.Lock()
	pods := make([]*podTimes, 0, len(b.tr.stages.pods))
	for _, p := range b.tr.stages.pods {
		pods = append(pods, p)
	}
	b.tr.mu.Unlock()
	var lines []string
	for _, f := range stagesOf(pods) {
		lines = append(lines, "  "+f.String())
	}
	logf("%s:\n%s", title, strings.Join(lines, "\n"))
}
