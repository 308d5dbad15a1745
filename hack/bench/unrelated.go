package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// A real node runs many pods besides its agents, and both controllers watch every pod of the
// cluster: --unrelated-pods-per-node puts that load on their caches. The pods belong to no DaemonSet
// or NodeAgentSet, live in a namespace of their own, are bound to their node by the bench (no
// scheduler work) and run there under kwok. They are created before the first trial, so the peak RSS
// of both controllers includes them, and deleted after the last measurement.
//
// Like most pods of a real cluster they have a controller: a ReplicaSet of 0 replicas that the bench
// creates for them (the bench's kube-controller-manager runs no ReplicaSet controller, and the garbage
// collector keeps pods whose owner exists). A controller caches such pods as it would a Deployment's.

// unrelatedNamespace holds the unrelated pods.
const unrelatedNamespace = "bench-unrelated"

// unrelatedOwner is the name of the ReplicaSet that controls the unrelated pods.
const unrelatedOwner = "bench-unrelated"

// unrelatedPod is the k-th unrelated pod of a node, controlled by owner (nil: none).
func unrelatedPod(node string, k int, owner *metav1.OwnerReference) *corev1.Pod {
	zero := int64(0)
	var refs []metav1.OwnerReference
	if owner != nil {
		refs = []metav1.OwnerReference{*owner}
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-%d", node, k), Namespace: unrelatedNamespace,
			Labels: map[string]string{"app": "bench-unrelated"}, OwnerReferences: refs},
		Spec: corev1.PodSpec{
			NodeName:                      node,
			TerminationGracePeriodSeconds: &zero,
			Containers:                    []corev1.Container{{Name: "app", Image: image1}},
		},
	}
}

// unrelatedPods are the unrelated pods of every node, controlled by owner (nil: none).
func (c config) unrelatedPods(owner *metav1.OwnerReference) []*corev1.Pod {
	pods := make([]*corev1.Pod, 0, c.nodes*c.unrelatedPerNode)
	for k := 1; k <= c.unrelatedPerNode; k++ {
		for n := 1; n <= c.nodes; n++ {
			pods = append(pods, unrelatedPod(fmt.Sprintf("worker-%d", n), k, owner))
		}
	}
	return pods
}

// readyCounter counts the Ready pods of one namespace through an informer.
type readyCounter struct {
	mu    sync.Mutex
	ready map[string]bool
}

func (r *readyCounter) set(o any) {
	if d, ok := o.(cache.DeletedFinalStateUnknown); ok {
		o = d.Obj
	}
	p, ok := o.(*corev1.Pod)
	if !ok {
		return
	}
	r.mu.Lock()
	r.ready[p.Name] = podReady(p)
	r.mu.Unlock()
}

func (r *readyCounter) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, ok := range r.ready {
		if ok {
			n++
		}
	}
	return n
}

// createUnrelatedPods creates the unrelated pods with many creates in flight and waits until kwok
// reports every one Ready.
func (b *bench) createUnrelatedPods(ctx context.Context, cs *kubernetes.Clientset) error {
	if b.c.unrelatedPerNode == 0 {
		return nil
	}
	if err := b.ensureNamespace(ctx, unrelatedNamespace); err != nil {
		return err
	}
	owner, err := createUnrelatedOwner(ctx, cs)
	if err != nil {
		return err
	}
	pods := b.c.unrelatedPods(owner)
	counter := &readyCounter{ready: map[string]bool{}}
	f := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithNamespace(unrelatedNamespace))
	if _, err := f.Core().V1().Pods().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: counter.set, UpdateFunc: func(_, n any) { counter.set(n) }, DeleteFunc: counter.set,
	}); err != nil {
		return err
	}
	stop := make(chan struct{})
	defer close(stop)
	f.Start(stop)
	f.WaitForCacheSync(stop)

	logf("creating %d unrelated pods (%d per node) in %s", len(pods), b.c.unrelatedPerNode, unrelatedNamespace)
	t0 := time.Now()
	err = inParallel(floorWorkers, pods, func(p *corev1.Pod) error {
		_, err := cs.CoreV1().Pods(unrelatedNamespace).Create(ctx, p, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			return nil
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("unrelated pods: %w", err)
	}
	created := time.Since(t0)
	if err := pollEvery(ctx, b.c.timeout, time.Second, func() bool { return counter.count() == len(pods) }); err != nil {
		return fmt.Errorf("unrelated pods Ready: %w (%d of %d)", err, counter.count(), len(pods))
	}
	logf("%d unrelated pods created in %.1fs, all Ready at %.1fs", len(pods), created.Seconds(), time.Since(t0).Seconds())
	// Let both controllers' writes caused by the pods (none expected) land before anything is measured.
	return b.settle(ctx)
}

// deleteUnrelatedPods deletes the unrelated pods (no grace period: nothing runs in them) and their
// namespace.
func (b *bench) deleteUnrelatedPods(ctx context.Context, cs *kubernetes.Clientset) error {
	pods := b.c.unrelatedPods(nil)
	if len(pods) == 0 {
		return nil
	}
	t0 := time.Now()
	grace := int64(0)
	err := inParallel(floorWorkers, pods, func(p *corev1.Pod) error {
		err := cs.CoreV1().Pods(unrelatedNamespace).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: &grace})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("deleting the unrelated pods: %w", err)
	}
	if err := cs.CoreV1().Namespaces().Delete(ctx, unrelatedNamespace, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	logf("%d unrelated pods deleted in %.1fs", len(pods), time.Since(t0).Seconds())
	return nil
}

// createUnrelatedOwner creates the ReplicaSet of 0 replicas that controls the unrelated pods and
// returns the controller reference to it.
func createUnrelatedOwner(ctx context.Context, cs *kubernetes.Clientset) (*metav1.OwnerReference, error) {
	labels := map[string]string{"app": "bench-unrelated"}
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: unrelatedOwner, Namespace: unrelatedNamespace},
		Spec: appsv1.ReplicaSetSpec{
			Replicas: new(int32),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: image1}}},
			},
		},
	}
	created, err := cs.AppsV1().ReplicaSets(unrelatedNamespace).Create(ctx, rs, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		created, err = cs.AppsV1().ReplicaSets(unrelatedNamespace).Get(ctx, unrelatedOwner, metav1.GetOptions{})
	}
	if err != nil {
		return nil, fmt.Errorf("the unrelated pods' ReplicaSet: %w", err)
	}
	return metav1.NewControllerRef(created, appsv1.SchemeGroupVersion.WithKind("ReplicaSet")), nil
}
