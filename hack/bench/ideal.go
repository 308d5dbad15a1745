package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// The reference rollout: the trials' rollout (maxUnavailable 10%, no surge) carried out by a client
// that spends nothing on deciding. It deletes the first budget nodes' pods; when a node's old pod is
// gone it creates the replacement, and when a replacement turns Ready it deletes the next node's pod,
// from the bench's own watch. It writes at most once per --reference-window (default 100 ms, the
// controller's pod-event window) and at once after a quiet window, as the controller's passes do; 0
// writes at every event. The reference's gone + Ready has every pod in flight at once; a rollout at
// this budget has a tenth of them, and this is what it takes on this cluster when deciding is free.

// rollEvent is what the reference rollout reacts to: the old pod on node is gone, or (readied) the
// replacement on node turned Ready.
type rollEvent struct {
	node    string
	readied bool
}

// rollEventOf is the rollEvent a pod event shows, if any: prev is the pod as last seen (nil if never),
// cur the pod now (nil: deleted), img the image the rollout moves to.
func rollEventOf(prev, cur *corev1.Pod, img string) (rollEvent, bool) {
	switch {
	case cur == nil:
		if prev != nil && prev.Spec.NodeName != "" && podImage(prev) != img {
			return rollEvent{node: prev.Spec.NodeName}, true
		}
	case podImage(cur) == img && cur.Spec.NodeName != "" && podReady(cur) && (prev == nil || !podReady(prev)):
		return rollEvent{node: cur.Spec.NodeName, readied: true}, true
	}
	return rollEvent{}, false
}

// rollAction is one write of the reference rollout: delete the pod named del, or (del empty) create
// the replacement on node.
type rollAction struct {
	node, del string
}

// idealRoller decides the reference rollout's writes from its events alone (no client, no clock).
type idealRoller struct {
	nodes  []string          // the order in which nodes are replaced.
	old    map[string]string // node -> its old pod's name.
	next   int               // nodes[next] is the next node to free.
	readys int               // replacements Ready.
}

func newIdealRoller(old map[string]string) *idealRoller {
	r := &idealRoller{old: old}
	for n := range old {
		r.nodes = append(r.nodes, n)
	}
	slices.Sort(r.nodes)
	return r
}

// start frees the first budget nodes.
func (r *idealRoller) start(budget int) []rollAction {
	acts := make([]rollAction, 0, budget)
	for range budget {
		acts = append(acts, r.free()...)
	}
	return acts
}

// free deletes the next node's old pod, if any is left.
func (r *idealRoller) free() []rollAction {
	if r.next >= len(r.nodes) {
		return nil
	}
	n := r.nodes[r.next]
	r.next++
	return []rollAction{{node: n, del: r.old[n]}}
}

// on is the write ev allows: the replacement once the old pod is gone, the next delete once a
// replacement is Ready.
func (r *idealRoller) on(ev rollEvent) []rollAction {
	if _, ok := r.old[ev.node]; !ok {
		return nil
	}
	if !ev.readied {
		return []rollAction{{node: ev.node}}
	}
	r.readys++
	return r.free()
}

func (r *idealRoller) done() bool { return r.readys >= len(r.nodes) }

// referenceRollout replaces the pods the reference made Ready (image1, one per node of namespace ns)
// with image2 pods the way idealRoller decides, with up to floorWorkers writes in flight, a batch at
// most every referenceWindow. It returns the seconds from the first delete until every node runs a
// Ready image2 pod.
func (b *bench) referenceRollout(ctx context.Context, cs *kubernetes.Clientset, ns string, pods floorPods) (float64, error) {
	r := newIdealRoller(b.tr.podOnNode())
	events := make(chan rollEvent, 2*len(r.nodes)+1)
	b.tr.follow(image2, events)
	defer b.tr.follow("", nil)
	b.tr.startRollout()
	var (
		wg   sync.WaitGroup
		sem  = make(chan struct{}, floorWorkers)
		errc = make(chan error, 1)
	)
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	write := func(acts []rollAction) {
		for _, a := range acts {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				var err error
				if a.del != "" {
					err = cs.CoreV1().Pods(ns).Delete(ctx, a.del, metav1.DeleteOptions{})
					if apierrors.IsNotFound(err) {
						err = nil
					}
				} else {
					_, err = cs.CoreV1().Pods(ns).Create(ctx, pods.pod(a.node, image2), metav1.CreateOptions{})
				}
				if err != nil {
					select {
					case errc <- fmt.Errorf("reference rollout on %s: %w", a.node, err):
					default:
					}
				}
			})
		}
	}
	t0 := time.Now()
	stopTimeline := b.logTimeline("reference rollout", image2, time.Second, t0)
	defer stopTimeline()
	deadline := time.After(b.c.timeout)
	write(r.start(rolloutBudget(len(r.nodes))))
	// Like the controller's pod-event window: an event after a quiet window acts at once, the events
	// of the next window act together at its end.
	var (
		pending   []rollAction
		flush     <-chan time.Time
		lastWrite = time.Now()
	)
	for !r.done() {
		select {
		case ev := <-events:
			pending = append(pending, r.on(ev)...)
			if flush != nil {
				continue
			}
			if wait := b.c.referenceWindow - time.Since(lastWrite); wait > 0 {
				flush = time.After(wait)
				continue
			}
			write(pending)
			pending, lastWrite = nil, time.Now()
		case <-flush:
			write(pending)
			pending, flush, lastWrite = nil, nil, time.Now()
		case err := <-errc:
			return 0, err
		case <-deadline:
			return 0, errors.New("reference rollout: timed out")
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	if err := poll(ctx, b.c.timeout, func() bool { return b.tr.done(image2) }); err != nil {
		return 0, fmt.Errorf("reference rollout: %w", err)
	}
	secs := time.Since(t0).Seconds()
	stopTimeline()
	b.tr.mu.Lock()
	maxUnavail := b.tr.maxUnavail
	b.tr.mu.Unlock()
	logf("reference rollout: %d nodes, %d at a time, in %.1fs; max nodes without a Ready pod %d", len(r.nodes), rolloutBudget(len(r.nodes)), secs, maxUnavail)
	b.logRolloutStages("reference", image2)
	return secs, nil
}
