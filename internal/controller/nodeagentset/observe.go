package nodeagentset

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
	"github.com/nodeagentset/nodeagentset/internal/planner"
)

// observation is what a reconcile reads from the cache: reads only, no writes.
type observation struct {
	nodes []*corev1.Node
	// owned are the pods this set controls; orphans are controller-less pods in its namespace that
	// its selector matches.
	owned   []*corev1.Pod
	orphans []*corev1.Pod
	// gate is what the readiness gate's plan needs beyond the set (gate.go).
	gate planner.GateInput
}

// observe reads the nodes and the set's candidate pods. It first passes the read barrier
// (waitForOwnWrites), so a pod created or deleted by the previous pass is never missed; the set's own
// pods and the nodes are then read straight from the informers' stores (stores.go), the orphans
// through the cache's index. Nodes have their own barrier, for the readiness gate's taint writes.
//
// The objects are the cache's own, not copies (a pass over 5,000 nodes would otherwise copy every
// node and pod): they are read-only from here on; whatever writes makes a copy first.
func (r *Reconciler) observe(ctx context.Context, set *nasv1alpha1.NodeAgentSet) (*observation, error) {
	if err := r.waitForOwnWrites(ctx); err != nil {
		return nil, err
	}
	var orphans corev1.PodList
	// The barrier has waited already: this list need not wait again.
	if err := r.Client.List(ctx, &orphans, client.InNamespace(set.Namespace), client.MatchingFields{indexPodOrphan: set.Namespace},
		client.UnsafeDisableDeepCopy, client.DisableReadYourWritesConsistency); err != nil {
		return nil, fmt.Errorf("listing orphan pods: %w", err)
	}
	if err := r.waitForOwnNodeWrites(ctx); err != nil {
		return nil, fmt.Errorf("waiting for the cache to show this controller's node writes: %w", err)
	}
	gate, err := r.gateInput(ctx, set)
	if err != nil {
		return nil, err
	}
	owned, err := r.stores.ownedPods(ctx, set.UID)
	if err != nil {
		return nil, fmt.Errorf("reading owned pods: %w", err)
	}
	nodes, err := r.stores.nodes(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading nodes: %w", err)
	}
	obs := &observation{nodes: nodes, owned: owned, gate: gate}
	sel := podSelector(set)
	for i := range orphans.Items {
		if sel.Matches(labels.Set(orphans.Items[i].Labels)) {
			obs.orphans = append(obs.orphans, &orphans.Items[i])
		}
	}
	return obs, nil
}
