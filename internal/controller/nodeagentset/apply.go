package nodeagentset

import (
	"context"
	"errors"
	"fmt"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
	"github.com/nodeagentset/nodeagentset/internal/planner"
)

// Event reasons, the same as the upstream DaemonSet controller's.
const (
	EventSelectingAll     = "SelectingAll"
	EventFailedDaemonPod  = "FailedDaemonPod"
	EventSucceededDaemon  = "SucceededDaemonPod"
	EventSuccessfulCreate = "SuccessfulCreate"
	EventFailedCreate     = "FailedCreate"
	EventSuccessfulDelete = "SuccessfulDelete"
	EventFailedDelete     = "FailedDelete"
	// EventSurgeBlockedByHostPort is ours: a surge rollout of a template that binds host ports is
	// carried out delete-first.
	EventSurgeBlockedByHostPort = "SurgeBlockedByHostPort"
)

// slowStartInitialBatch is the first create batch; batches double while they all succeed.
const slowStartInitialBatch = 1

// apply carries out a plan: deletes first (in parallel), then creates in slow-start batches. It
// returns the errors it met; NotFound on delete is not one, nor a create refused because the namespace
// is terminating.
func (r *Reconciler) apply(ctx context.Context, set *nasv1alpha1.NodeAgentSet, hash string, plan planner.Plan) error {
	return errors.Join(r.deletePods(ctx, set, plan.Deletes), r.createPods(ctx, set, hash, plan.Creates))
}

func (r *Reconciler) deletePods(ctx context.Context, set *nasv1alpha1.NodeAgentSet, deletions []planner.Deletion) error {
	errs := make([]error, len(deletions))
	var wg sync.WaitGroup
	for i, d := range deletions {
		switch d.Reason {
		case planner.DeleteFailed:
			r.recordFailedPodDeletion(set, d.Node)
			r.Recorder.Eventf(set, d.Pod, corev1.EventTypeWarning, EventFailedDaemonPod, "Delete",
				"Found failed daemon pod %s/%s on node %s, will try to kill it", d.Pod.Namespace, d.Pod.Name, d.Node)
		case planner.DeleteSucceeded:
			r.Recorder.Eventf(set, d.Pod, corev1.EventTypeNormal, EventSucceededDaemon, "Delete",
				"Found succeeded daemon pod %s/%s on node %s, will try to delete it", d.Pod.Namespace, d.Pod.Name, d.Node)
		}
		wg.Go(func() {
			// The UID precondition makes sure we delete the pod we looked at, not a namesake.
			err := r.Client.Delete(ctx, d.Pod.DeepCopy(), client.Preconditions{UID: &d.Pod.UID})
			switch {
			case err == nil:
				r.Metrics.podDeleted(set, d.Reason)
				r.Recorder.Eventf(set, d.Pod, corev1.EventTypeNormal, EventSuccessfulDelete, "Delete", "Deleted pod: %s", d.Pod.Name)
				log.FromContext(ctx).V(2).Info("Deleted pod", "pod", client.ObjectKeyFromObject(d.Pod), "node", d.Node, "reason", d.Reason)
			case apierrors.IsNotFound(err) || apierrors.IsConflict(err):
				// Gone already, or replaced by a namesake: nothing of ours to delete.
			default:
				r.Recorder.Eventf(set, d.Pod, corev1.EventTypeWarning, EventFailedDelete, "Delete", "Error deleting: %v", err)
				errs[i] = fmt.Errorf("deleting pod %s: %w", d.Pod.Name, err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// createPods creates one pod per node in batches of 1, 2, 4, ...: a template that cannot be created
// costs one failed call, not one per node. After a batch with a failure the rest waits for the next
// pass.
func (r *Reconciler) createPods(ctx context.Context, set *nasv1alpha1.NodeAgentSet, hash string, nodes []string) error {
	for batch, start := slowStartInitialBatch, 0; start < len(nodes); start, batch = start+batch, batch*2 {
		end := min(start+batch, len(nodes))
		errs := make([]error, end-start)
		var wg sync.WaitGroup
		for i, node := range nodes[start:end] {
			wg.Go(func() { errs[i] = r.createPod(ctx, set, hash, node) })
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return err
		}
	}
	return nil
}

func (r *Reconciler) createPod(ctx context.Context, set *nasv1alpha1.NodeAgentSet, hash, node string) error {
	pod := planner.NewPod(set, node, hash)
	err := r.Client.Create(ctx, pod)
	switch {
	case err == nil:
		r.Metrics.podCreated(set)
		r.Recorder.Eventf(set, pod, corev1.EventTypeNormal, EventSuccessfulCreate, "Create", "Created pod: %s", pod.Name)
		log.FromContext(ctx).V(2).Info("Created pod", "pod", client.ObjectKeyFromObject(pod), "node", node)
		return nil
	case apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause):
		return nil
	default:
		r.Recorder.Eventf(set, nil, corev1.EventTypeWarning, EventFailedCreate, "Create", "Error creating: %v", err)
		if isTemplateRejection(err) {
			r.templates.reject(set, hash, err)
		}
		return fmt.Errorf("creating pod on node %s: %w", node, err)
	}
}
