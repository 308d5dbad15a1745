package main

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
	"github.com/nodeagentset/nodeagentset/internal/planner"
)

// floorWorkers is how many creates the reference client keeps in flight: kube-apiserver's default
// --max-mutating-requests-inflight, so the client is not what limits the figure.
const floorWorkers = 200

// floorResult is what the machine allows: N agent-like pods created by a client with no rate limit
// and many requests in flight, then scheduled by kube-scheduler and made Ready by kwok like the
// controllers' pods.
type floorResult struct {
	created float64 // seconds until every create returned.
	seen    float64 // seconds until the bench's pod watch had seen every pod: a trial's "every node has a pod".
	ready   float64 // seconds until every node had a Ready pod.
	rollout float64 // seconds the reference rollout took (ideal.go).
	deleted float64 // seconds until every delete returned.
	gone    float64 // seconds from the first delete until every pod was gone.
}

// throughput is the API server's pod create rate, pods per second.
func (f floorResult) throughput(n int) float64 {
	if f.created == 0 {
		return 0
	}
	return float64(n) / f.created
}

// newFloorClient is a client with no client-side rate limit, on connections of its own. client-go
// shares one transport between configs that differ only in rate limits, so without a dialer of its
// own the reference's creates and deletes would go over the HTTP/2 connection that carries the bench's
// pod watch, which times the reference and the trials alike; a controller, a process of its own, never
// shares it.
func newFloorClient(rc *rest.Config) (*kubernetes.Clientset, error) {
	return kubernetes.NewForConfig(floorConfig(rc))
}

// floorConfig is rc without a client-side rate limit and with a dialer of its own, which gives it a
// transport of its own (see newFloorClient).
func floorConfig(rc *rest.Config) *rest.Config {
	c := rest.CopyConfig(rc)
	c.QPS, c.Burst = -1, 0
	c.Dial = (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	return c
}

// floorPods makes the reference's pods: the pod the controller creates for a node (planner.NewPod:
// the bench template with image img, the automatic tolerations, a revision label, pinned to the node by
// required node affinity and left to the scheduler to bind), with a controller owner the reference
// makes for the purpose, so that kube-apiserver, kube-scheduler, kwok and the garbage collector handle
// the same object for the reference as for the trials.
type floorPods struct {
	owner metav1.OwnerReference
	// revisions holds, for image1 and image2, a set of the bench template and the controller's
	// revision hash of it, built once: the reference's creates are timed.
	revisions map[string]floorRevision
}

// floorRevision is a set of the bench template with one image, as the trials create it, and its hash.
type floorRevision struct {
	set  *nasv1alpha1.NodeAgentSet
	hash string
}

// newFloorPods creates the owner of namespace ns's reference pods: a ConfigMap, which no controller
// acts on.
func newFloorPods(ctx context.Context, cs kubernetes.Interface, ns string) (floorPods, error) {
	cm, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "reference"}},
		metav1.CreateOptions{})
	if err != nil {
		return floorPods{}, fmt.Errorf("reference pods' owner: %w", err)
	}
	f := floorPods{owner: *metav1.NewControllerRef(cm, corev1.SchemeGroupVersion.WithKind("ConfigMap")),
		revisions: map[string]floorRevision{}}
	for _, img := range []string{image1, image2} {
		set := &nasv1alpha1.NodeAgentSet{ObjectMeta: metav1.ObjectMeta{Name: "floor"},
			Spec: nasv1alpha1.NodeAgentSetSpec{Template: template(img)}}
		f.revisions[img] = floorRevision{set: set, hash: planner.RevisionHash(set)}
	}
	return f, nil
}

// pod is the reference's pod for node, running img (image1 or image2), labelled with its revision as
// the controller labels its pods.
func (f floorPods) pod(node, img string) *corev1.Pod {
	rev := f.revisions[img]
	pod := planner.NewPod(rev.set, node, rev.hash)
	pod.OwnerReferences = []metav1.OwnerReference{f.owner}
	return pod
}

// floor measures the reference figure: how fast this machine's API server takes pod creates, and
// how long the rest of the pipeline (scheduler, kwok) then needs until every node runs a Ready pod;
// then the reference rollout at the trials' budget (ideal.go); then the same as the first for deletes
// (default grace period, as the controllers delete) until every pod is gone.
func (b *bench) floor(ctx context.Context, cs *kubernetes.Clientset, i int) (floorResult, error) {
	ns := fmt.Sprintf("bench-floor-%d", i)
	var r floorResult
	if err := b.waitClusterQuiet(ctx); err != nil {
		return r, err
	}
	if err := b.ensureNamespace(ctx, ns); err != nil {
		return r, err
	}
	b.tr.reset(ns, b.c.nodes)
	nodes := make([]string, 0, b.c.nodes)
	for n := 1; n <= b.c.nodes; n++ {
		nodes = append(nodes, fmt.Sprintf("worker-%d", n))
	}
	pods, err := newFloorPods(ctx, cs, ns)
	if err != nil {
		return r, err
	}
	t0 := time.Now()
	stopTimeline := b.logTimeline("reference coverage", image1, timelineCoveragePeriod, t0)
	defer stopTimeline()
	err = inParallel(floorWorkers, nodes, func(node string) error {
		_, err := cs.CoreV1().Pods(ns).Create(ctx, pods.pod(node, image1), metav1.CreateOptions{})
		return err
	})
	r.created = time.Since(t0).Seconds()
	if err != nil {
		return r, fmt.Errorf("reference creates: %w", err)
	}
	if err := poll(ctx, b.c.timeout, func() bool { return b.tr.done(image1) }); err != nil {
		return r, fmt.Errorf("reference pods Ready: %w (%d pods)", err, b.tr.count())
	}
	r.ready = time.Since(t0).Seconds()
	r.seen = b.tr.createdAt().Sub(t0).Seconds()
	stopTimeline()
	b.logCoverageStages("reference", image1, t0, time.Now())
	if r.rollout, err = b.referenceRollout(ctx, cs, ns, pods); err != nil {
		return r, err
	}

	t1 := time.Now()
	err = inParallel(floorWorkers, b.tr.names(), func(name string) error {
		err := cs.CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	})
	r.deleted = time.Since(t1).Seconds()
	if err != nil {
		return r, fmt.Errorf("reference deletes: %w", err)
	}
	if err := poll(ctx, b.c.timeout, func() bool { return b.tr.count() == 0 }); err != nil {
		return r, fmt.Errorf("waiting for the reference pods to go: %w", err)
	}
	r.gone = time.Since(t1).Seconds()
	logf("reference #%d: %d pods created in %.1fs (%.0f pods/s, %d in flight), all Ready at %.1fs; "+
		"rolled out at %d nodes at a time in %.1fs; deleted in %.1fs, all gone at %.1fs",
		i, b.c.nodes, r.created, r.throughput(b.c.nodes), floorWorkers, r.ready, rolloutBudget(b.c.nodes), r.rollout, r.deleted, r.gone)
	return r, nil
}

// inParallel calls fn for every item with workers calls in flight, and returns the first error.
func inParallel[T any](workers int, items []T, fn func(T) error) error {
	work := make(chan T)
	var (
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
	)
	for range workers {
		wg.Go(func() {
			for it := range work {
				if err := fn(it); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
				}
			}
		})
	}
	for _, it := range items {
		work <- it
	}
	close(work)
	wg.Wait()
	return firstErr
}
