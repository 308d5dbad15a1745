package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
)

type result struct {
	kind       string
	created    float64 // seconds until every node had a pod (created, not yet bound or Ready).
	cover      float64
	rollout    float64
	maxUnavail int
	maxOnNode  int
	coverReq   map[string]float64
	rolloutReq map[string]float64
	cpu        float64
	hwm        float64
}

type bench struct {
	c    config
	cs   *kubernetes.Clientset
	cl   client.Client
	ct   *controllers
	tr   *tracker
	prof *profiler
	// idleLoad is the cluster's CPU use, in cores, with the nodes heart-beating and no trial running.
	idleLoad float64
}

func template(img string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "bench-agent"}},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "agent", Image: img,
				Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
					corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("16Mi")}}}},
		},
	}
}

func (b *bench) create(ctx context.Context, kind, ns string) error {
	sel := &metav1.LabelSelector{MatchLabels: map[string]string{"app": "bench-agent"}}
	mu := intstr.FromString("10%")
	zero := intstr.FromInt32(0)
	if kind == kindDS {
		ds := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "agent", Namespace: ns}, Spec: appsv1.DaemonSetSpec{
			Selector: sel, Template: template(image1),
			UpdateStrategy: appsv1.DaemonSetUpdateStrategy{Type: appsv1.RollingUpdateDaemonSetStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDaemonSet{MaxUnavailable: &mu, MaxSurge: &zero}},
		}}
		return b.cl.Create(ctx, ds)
	}
	nas := &nasv1alpha1.NodeAgentSet{ObjectMeta: metav1.ObjectMeta{Name: "agent", Namespace: ns}, Spec: nasv1alpha1.NodeAgentSetSpec{
		Selector: sel, Template: template(image1),
		UpdateStrategy: nasv1alpha1.NodeAgentSetUpdateStrategy{Type: nasv1alpha1.NodeAgentSetUpdateStrategyType("RollingUpdate"),
			RollingUpdate: &nasv1alpha1.RollingUpdateNodeAgentSet{MaxUnavailable: &mu, MaxSurge: &zero}},
	}}
	return b.cl.Create(ctx, nas)
}

func (b *bench) setImage(ctx context.Context, kind, ns, img string) error {
	patch := fmt.Sprintf(`{"spec":{"template":{"spec":{"containers":[{"name":"agent","image":%q}]}}}}`, img)
	var obj client.Object = &appsv1.DaemonSet{}
	pt := types.StrategicMergePatchType
	if kind == kindNAS {
		obj = &nasv1alpha1.NodeAgentSet{}
		pt = types.MergePatchType
		patch = fmt.Sprintf(`{"spec":{"template":{"spec":{"containers":[{"name":"agent","image":%q,"resources":{"requests":{"cpu":"10m","memory":"16Mi"}}}]}}}}`, img)
	}
	obj.SetName("agent")
	obj.SetNamespace(ns)
	return b.cl.Patch(ctx, obj, client.RawPatch(pt, []byte(patch)))
}

// statusDone: the object's status reports n nodes desired, current, ready, available and updated, for
// its current generation.
func (b *bench) statusDone(ctx context.Context, kind, ns string) bool {
	n := int32(b.c.nodes)
	key := client.ObjectKey{Namespace: ns, Name: "agent"}
	if kind == kindDS {
		var ds appsv1.DaemonSet
		if b.cl.Get(ctx, key, &ds) != nil {
			return false
		}
		s := ds.Status
		return s.ObservedGeneration == ds.Generation && s.DesiredNumberScheduled == n && s.CurrentNumberScheduled == n &&
			s.NumberReady == n && s.NumberAvailable == n && s.UpdatedNumberScheduled == n && s.NumberMisscheduled == 0
	}
	var nas nasv1alpha1.NodeAgentSet
	if b.cl.Get(ctx, key, &nas) != nil {
		return false
	}
	s := nas.Status
	return s.ObservedGeneration == nas.Generation && s.DesiredNumberScheduled == n && s.CurrentNumberScheduled == n &&
		s.NumberReady == n && s.NumberAvailable == n && s.UpdatedNumberScheduled == n && s.NumberMisscheduled == 0
}

func (b *bench) waitDone(ctx context.Context, kind, ns, img string) error {
	return poll(ctx, b.c.timeout, func() bool { return b.tr.done(img) && b.statusDone(ctx, kind, ns) })
}

func (b *bench) trial(ctx context.Context, kind string, i int) (result, error) {
	ns := fmt.Sprintf("bench-%s-%d", strings.ToLower(kind), i)
	r := result{kind: kind}
	if err := b.waitClusterQuiet(ctx); err != nil {
		return r, err
	}
	if err := b.ensureNamespace(ctx, ns); err != nil {
		return r, err
	}
	b.tr.reset(ns, b.c.nodes)
	s0, err := b.ct.snap(kind)
	if err != nil {
		return r, err
	}
	stopProfile := func() {}
	if kind == kindNAS {
		stopProfile = b.prof.cpu(ctx, fmt.Sprintf("nodeagentset-%d", i))
	}
	defer func() { stopProfile() }()
	t0 := time.Now()
	if err := b.create(ctx, kind, ns); err != nil {
		return r, err
	}
	stopTimeline := b.logTimeline(kind+" coverage", image1, timelineCoveragePeriod, t0)
	err = b.waitDone(ctx, kind, ns, image1)
	stopTimeline()
	if err != nil {
		return r, fmt.Errorf("%s coverage: %w (%d pods)", kind, err, b.tr.count())
	}
	r.cover = time.Since(t0).Seconds()
	b.logCoverageStages(kind, image1, t0, time.Now())
	r.created = b.tr.createdAt().Sub(t0).Seconds()
	s1, err := b.ct.snap(kind)
	if err != nil {
		return r, err
	}
	b.tr.startRollout()
	t1 := time.Now()
	if err := b.setImage(ctx, kind, ns, image2); err != nil {
		return r, err
	}
	stopTimeline = b.logTimeline(kind+" rollout", image2, time.Second, t1)
	err = b.waitDone(ctx, kind, ns, image2)
	stopTimeline()
	if err != nil {
		return r, fmt.Errorf("%s rollout: %w", kind, err)
	}
	r.rollout = time.Since(t1).Seconds()
	b.logRolloutStages(kind, image2)
	s2, err := b.ct.snap(kind)
	if err != nil {
		return r, err
	}
	if kind == kindNAS {
		stopProfile()
		stopProfile = func() {}
		b.prof.heap(ctx, fmt.Sprintf("nodeagentset-%d", i))
	}
	b.tr.mu.Lock()
	r.maxUnavail, r.maxOnNode = b.tr.maxUnavail, b.tr.maxOnNode
	b.tr.mu.Unlock()
	r.coverReq, r.rolloutReq = delta(s0, s1), delta(s1, s2)
	r.cpu, r.hwm = s2.cpu-s0.cpu, s2.hwm
	logf("%s #%d: coverage %.1fs, rollout %.1fs, max unavailable %d, max pods/node %d, requests %v + %v, cpu %.1fs, peak RSS %.0f MiB",
		kind, i, r.cover, r.rollout, r.maxUnavail, r.maxOnNode, r.coverReq, r.rolloutReq, r.cpu, r.hwm)
	if kind == kindNAS {
		logf("%s #%d: coverage %s; rollout %s", kind, i, passes(s0, s1), passes(s1, s2))
	}
	if err := b.deleteAndWait(ctx, kind, ns); err != nil {
		return r, err
	}
	return r, nil
}

func (b *bench) deleteAndWait(ctx context.Context, kind, ns string) error {
	var obj client.Object = &appsv1.DaemonSet{}
	if kind == kindNAS {
		obj = &nasv1alpha1.NodeAgentSet{}
	}
	obj.SetName("agent")
	obj.SetNamespace(ns)
	if err := b.cl.Delete(ctx, obj, client.PropagationPolicy(metav1.DeletePropagationBackground)); err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	// The garbage collector would delete the pods at kube-controller-manager's client rate (minutes
	// for 5,000 pods); the bench deletes them itself. Deleting is not measured.
	if err := b.deletePods(ctx, ns); err != nil {
		return err
	}
	// The tracker follows this namespace: no list of thousands of pods every 100 ms.
	if err := poll(ctx, b.c.timeout, func() bool { return b.tr.count() == 0 }); err != nil {
		return fmt.Errorf("waiting for the pods of %s/%s to go: %w", ns, kind, err)
	}
	return b.settle(ctx)
}

// deletePodsAttempts bounds deletePods: each attempt deletes what it can before the API server's
// request timeout.
const deletePodsAttempts = 10

// deletePods deletes every pod of the namespace at once (no grace period) with a delete-collection
// call, again while one fails: at 10,000 pods the call outlives the API server's one-minute request
// timeout (the stream is reset), having deleted some of them.
func (b *bench) deletePods(ctx context.Context, ns string) error {
	grace := int64(0)
	var err error
	for range deletePodsAttempts {
		err = b.cs.CoreV1().Pods(ns).DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: &grace}, metav1.ListOptions{})
		if err == nil || ctx.Err() != nil {
			return err
		}
		logf("deleting the pods of %s: %v; again", ns, err)
		time.Sleep(time.Second)
	}
	return fmt.Errorf("deleting the pods of %s: %w", ns, err)
}

// settle waits until neither controller has written for quietPeriod (at most a minute), so that the
// garbage collector's deletes of one trial's pods do not land in the next trial's counts.
func (b *bench) settle(ctx context.Context) error {
	const quietPeriod = 3 * time.Second
	last := map[string]float64{}
	quietSince := time.Now()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		moved := false
		for _, kind := range []string{kindDS, kindNAS} {
			s, err := b.ct.snap(kind)
			if err != nil {
				return err
			}
			if w := writes(s.req); w != last[kind] {
				last[kind], moved = w, true
			}
		}
		if moved {
			quietSince = time.Now()
		} else if time.Since(quietSince) >= quietPeriod {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	logf("controllers still writing a minute after the trial; going on")
	return nil
}

type idleResult struct {
	req map[string]float64
	cpu float64
}

func (b *bench) idle(ctx context.Context) (map[string]idleResult, error) {
	out := map[string]idleResult{}
	for _, kind := range []string{kindDS, kindNAS} {
		ns := "bench-idle-" + strings.ToLower(kind)
		if err := b.ensureNamespace(ctx, ns); err != nil {
			return nil, err
		}
		b.tr.reset(ns, b.c.nodes)
		if err := b.create(ctx, kind, ns); err != nil {
			return nil, err
		}
		if err := b.waitDone(ctx, kind, ns, image1); err != nil {
			return nil, fmt.Errorf("idle %s: %w", kind, err)
		}
	}
	logf("idle: both objects settled on %d nodes; measuring %s", b.c.nodes, b.c.idle)
	// Let the last status writes land.
	time.Sleep(5 * time.Second)
	s0 := map[string]snapshot{}
	for _, kind := range []string{kindDS, kindNAS} {
		s, err := b.ct.snap(kind)
		if err != nil {
			return nil, err
		}
		s0[kind] = s
	}
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(b.c.idle):
	}
	for _, kind := range []string{kindDS, kindNAS} {
		s, err := b.ct.snap(kind)
		if err != nil {
			return nil, err
		}
		out[kind] = idleResult{req: delta(s0[kind], s), cpu: s.cpu - s0[kind].cpu}
	}
	return out, nil
}
