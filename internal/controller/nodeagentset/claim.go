package nodeagentset

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
)

// claimPods decides which pods belong to the set (rules 31-34) and makes the API agree: owned pods
// whose labels still match stay; owned pods that no longer match are released (they keep running, the
// node looks empty and gets a new pod); matching orphans are adopted. Pods controlled by anything else
// never reach this function.
func (r *Reconciler) claimPods(ctx context.Context, set *nasv1alpha1.NodeAgentSet, obs *observation) ([]*corev1.Pod, error) {
	claimed := make([]*corev1.Pod, 0, len(obs.owned)+len(obs.orphans))
	sel := podSelector(set)
	for _, pod := range obs.owned {
		if sel.Matches(labels.Set(pod.Labels)) {
			claimed = append(claimed, pod)
			continue
		}
		if err := r.releasePod(ctx, set, pod); err != nil {
			return nil, err
		}
	}
	checkedLive := false
	for _, pod := range obs.orphans {
		if pod.DeletionTimestamp != nil {
			continue
		}
		if !checkedLive {
			// The cached set may be stale: never adopt for a set that is being deleted or was
			// re-created under the same name.
			if err := r.checkSetIsLive(ctx, set); err != nil {
				return nil, err
			}
			checkedLive = true
		}
		adopted, err := r.adoptPod(ctx, set, pod)
		if err != nil {
			return nil, err
		}
		if adopted != nil {
			claimed = append(claimed, adopted)
		}
	}
	return claimed, nil
}

func (r *Reconciler) checkSetIsLive(ctx context.Context, set *nasv1alpha1.NodeAgentSet) error {
	var live nasv1alpha1.NodeAgentSet
	if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(set), &live); err != nil {
		return fmt.Errorf("re-reading the set before adopting pods: %w", err)
	}
	if live.UID != set.UID {
		return fmt.Errorf("original NodeAgentSet %s/%s is gone: got uid %s, wanted %s", set.Namespace, set.Name, live.UID, set.UID)
	}
	if live.DeletionTimestamp != nil {
		return fmt.Errorf("NodeAgentSet %s/%s is being deleted; not adopting pods", set.Namespace, set.Name)
	}
	return nil
}

// adoptPod makes the set the pod's controller. The patch carries the pod's UID, so it cannot land on
// a re-created pod of the same name; a pod that is gone or was adopted by someone else is skipped.
func (r *Reconciler) adoptPod(ctx context.Context, set *nasv1alpha1.NodeAgentSet, pod *corev1.Pod) (*corev1.Pod, error) {
	patch, err := adoptPatch(set, pod.UID)
	if err != nil {
		return nil, err
	}
	adopted := pod.DeepCopy()
	if err := r.Client.Patch(ctx, adopted, client.RawPatch(types.StrategicMergePatchType, patch)); err != nil {
		if apierrors.IsNotFound(err) || apierrors.IsInvalid(err) || apierrors.IsConflict(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("adopting pod %s: %w", pod.Name, err)
	}
	log.FromContext(ctx).V(2).Info("Adopted orphan pod", "pod", client.ObjectKeyFromObject(pod))
	return adopted, nil
}

// releasePod removes the set's owner reference from a pod whose labels no longer match (rule 33).
func (r *Reconciler) releasePod(ctx context.Context, set *nasv1alpha1.NodeAgentSet, pod *corev1.Pod) error {
	if err := r.patchOwner(ctx, pod.DeepCopy(), releasePatch(set.UID, pod.UID)); err != nil {
		return err
	}
	log.FromContext(ctx).V(2).Info("Released pod whose labels no longer match", "pod", client.ObjectKeyFromObject(pod))
	return nil
}
