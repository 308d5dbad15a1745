package nodeagentset

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
)

// observation is what a reconcile reads from the cache: reads only, no writes.
type observation struct {
	nodes []*corev1.Node
	// owned are the pods this set controls; orphans are controller-less pods in its namespace that
	// its selector matches.
	owned   []*corev1.Pod
	orphans []*corev1.Pod
}

// observe reads the nodes and the set's candidate pods through the cache indexes. The client waits
// until the cache has seen this controller's own earlier writes (read-your-writes), so a pod created
// by the previous pass is never missed.
//
// The objects are the cache's own, not copies (a pass over 5,000 nodes would otherwise copy every
// node): they are read-only from here on; whatever writes makes a copy first.
func (r *Reconciler) observe(ctx context.Context, set *nasv1alpha1.NodeAgentSet) (*observation, error) {
	var nodes corev1.NodeList
	if err := r.Client.List(ctx, &nodes, client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("listing nodes: %w", err)
	}
	var owned corev1.PodList
	if err := r.Client.List(ctx, &owned, client.InNamespace(set.Namespace),
		client.MatchingFields{indexPodController: string(set.UID)}, client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("listing owned pods: %w", err)
	}
	var orphans corev1.PodList
	if err := r.Client.List(ctx, &orphans, client.InNamespace(set.Namespace),
		client.MatchingFields{indexPodOrphan: set.Namespace}, client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("listing orphan pods: %w", err)
	}
	obs := &observation{
		nodes: make([]*corev1.Node, len(nodes.Items)),
		owned: make([]*corev1.Pod, len(owned.Items)),
	}
	for i := range nodes.Items {
		obs.nodes[i] = &nodes.Items[i]
	}
	for i := range owned.Items {
		obs.owned[i] = &owned.Items[i]
	}
	sel := podSelector(set)
	for i := range orphans.Items {
		if sel.Matches(labels.Set(orphans.Items[i].Labels)) {
			obs.orphans = append(obs.orphans, &orphans.Items[i])
		}
	}
	return obs, nil
}
