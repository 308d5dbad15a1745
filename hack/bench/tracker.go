package main

import (
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

const (
	kindDS  = "DaemonSet"
	kindNAS = "NodeAgentSet"
)

// tracker follows the pods of one namespace through an informer and keeps, per node, the pods on it.
type tracker struct {
	mu         sync.Mutex
	ns         string
	n          int
	rollout    bool
	pods       map[types.UID]*corev1.Pod
	readyOn    map[string]int // node -> ready, non-terminating pods.
	onNode     map[string]int // node -> pods bound to it (terminating included).
	maxOnNode  int
	maxUnavail int
	allCreated time.Time // when the n-th pod of the coverage phase showed up.
	stages     stageRecorder
	// followImg and follower: while set, every rollEvent toward followImg goes to follower (the
	// reference rollout).
	followImg string
	follower  chan<- rollEvent
}

func podReady(p *corev1.Pod) bool {
	if p.DeletionTimestamp != nil {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// podImage is the image of the pod's (one) container, "" when it has none.
func podImage(p *corev1.Pod) string {
	if len(p.Spec.Containers) == 0 {
		return ""
	}
	return p.Spec.Containers[0].Image
}

func (t *tracker) reset(ns string, n int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.ns, t.n, t.rollout = ns, n, false
	t.pods = map[types.UID]*corev1.Pod{}
	t.readyOn = map[string]int{}
	t.onNode = map[string]int{}
	t.maxOnNode, t.maxUnavail = 0, 0
	t.allCreated = time.Time{}
	t.stages.reset()
}

func (t *tracker) apply(old, cur *corev1.Pod) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := cur
	if p == nil {
		p = old
	}
	if p == nil || p.Namespace != t.ns {
		return
	}
	t.stages.observe(p, cur == nil, time.Now())
	prev := t.pods[p.UID]
	t.notify(prev, old, cur)
	if prev != nil {
		if prev.Spec.NodeName != "" {
			t.onNode[prev.Spec.NodeName]--
			if podReady(prev) {
				t.readyOn[prev.Spec.NodeName]--
				if t.readyOn[prev.Spec.NodeName] == 0 {
					delete(t.readyOn, prev.Spec.NodeName)
				}
			}
		}
		delete(t.pods, p.UID)
	}
	if cur != nil {
		t.pods[cur.UID] = cur
		if !t.rollout && t.allCreated.IsZero() && len(t.pods) == t.n {
			t.allCreated = time.Now()
		}
		if nn := cur.Spec.NodeName; nn != "" {
			t.onNode[nn]++
			if t.onNode[nn] > t.maxOnNode {
				t.maxOnNode = t.onNode[nn]
			}
			if podReady(cur) {
				t.readyOn[nn]++
			}
		}
	}
	if t.rollout {
		if u := t.n - len(t.readyOn); u > t.maxUnavail {
			t.maxUnavail = u
		}
	}
}

// follow sends every rollEvent toward img to ch until it is called again with a nil ch. ch must have
// room for every event: the tracker sends under its lock.
func (t *tracker) follow(img string, ch chan<- rollEvent) {
	t.mu.Lock()
	t.followImg, t.follower = img, ch
	t.mu.Unlock()
}

// podOnNode maps each node to the name of a tracked pod bound to it.
func (t *tracker) podOnNode() map[string]string {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[string]string, len(t.pods))
	for _, p := range t.pods {
		if p.Spec.NodeName != "" {
			out[p.Spec.NodeName] = p.Name
		}
	}
	return out
}

// notify sends the follower the rollEvent of a pod event, if any: prev is the pod as tracked, old
// and cur what the informer gave. The caller holds t.mu.
func (t *tracker) notify(prev, old, cur *corev1.Pod) {
	if t.follower == nil {
		return
	}
	if prev == nil && cur == nil {
		prev = old
	}
	if ev, ok := rollEventOf(prev, cur, t.followImg); ok {
		t.follower <- ev
	}
}

func (t *tracker) startRollout() {
	t.mu.Lock()
	t.rollout = true
	t.mu.Unlock()
}

// done: exactly one pod per node, every one Ready with the given image, n nodes.
func (t *tracker) done(img string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.pods) != t.n || len(t.readyOn) != t.n {
		return false
	}
	for _, p := range t.pods {
		if p.Spec.NodeName == "" || !podReady(p) || podImage(p) != img {
			return false
		}
	}
	return true
}

// createdAt is when the watch showed the n-th pod of the coverage phase (zero before that).
func (t *tracker) createdAt() time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.allCreated
}

func (t *tracker) count() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.pods)
}

// names lists the tracked pods' names.
func (t *tracker) names() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]string, 0, len(t.pods))
	for _, p := range t.pods {
		out = append(out, p.Name)
	}
	return out
}

// census counts the tracked pods of a rollout to image img.
func (t *tracker) census(img string) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var old, terminating, fresh, bound, ready int
	for _, p := range t.pods {
		switch {
		case p.DeletionTimestamp != nil:
			terminating++
		case podImage(p) == img:
			fresh++
			if p.Spec.NodeName != "" {
				bound++
			}
			if podReady(p) {
				ready++
			}
		default:
			old++
		}
	}
	return fmt.Sprintf("old %d, terminating %d, new %d (bound %d, Ready %d), nodes without a Ready pod %d",
		old, terminating, fresh, bound, ready, t.n-len(t.readyOn))
}

// logTimeline logs the census of the tracked pods against image img every period when --timeline
// is set, until the returned function is first called. label names the phase: "DaemonSet rollout".
func (b *bench) logTimeline(label, img string, period time.Duration, t0 time.Time) func() {
	if !b.c.timeline {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		tick := time.NewTicker(period)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				logf("%s %5.1fs: %s", label, time.Since(t0).Seconds(), b.tr.census(img))
			}
		}
	}()
	return sync.OnceFunc(func() { close(done) })
}

// timelineCoveragePeriod is the census period of --timeline while pods are created and turn Ready:
// coverage at 1,000 nodes takes seconds, not minutes.
const timelineCoveragePeriod = 500 * time.Millisecond
