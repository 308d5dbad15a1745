package nodeagentset

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// barrierTimeout bounds the read barrier. The cache shows a write within milliseconds; a wait of
// seconds means an event that will not come (a relist that folded a delete into a replace, a broken
// watch), and the pass gives up and comes back rather than hold a worker until something unrelated
// moves the informer on.
const barrierTimeout = 5 * time.Second

// errCacheBehind: the cache did not show the controller's own writes within barrierTimeout.
var errCacheBehind = errors.New("the cache has not caught up with this controller's writes")

// barrierProbeNode is a node name no pod is indexed under (node names are DNS subdomains, without a
// slash), so the barrier's list is empty: only its wait matters.
const barrierProbeNode = "/"

// waitForOwnWrites is the read barrier: it returns once the pod cache has seen every pod create,
// delete and patch this process made before the call, or errCacheBehind after barrierTimeout. A pass
// calls it before it reads pods from the informers' stores (stores.go), so that a pod the previous
// pass created or deleted is never missed (docs/design/stale-cache.md).
//
// The writes are recorded by controller-runtime's read-your-writes client (ManagerOptions); a list
// through that client waits for them, whatever it selects. The barrier lists through the pod index
// for a node no pod targets, so the wait is all it costs.
func (r *Reconciler) waitForOwnWrites(ctx context.Context) error {
	return waitForWrites(ctx, r.Client, barrierTimeout)
}

// waitForWrites lists pods through c, a read-your-writes client, for at most timeout.
func waitForWrites(ctx context.Context, c client.Reader, timeout time.Duration) error {
	bounded, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	err := c.List(bounded, &corev1.PodList{}, client.MatchingFields{indexPodNode: barrierProbeNode}, client.UnsafeDisableDeepCopy)
	if err != nil && ctx.Err() == nil && bounded.Err() != nil {
		return fmt.Errorf("%w after %s", errCacheBehind, timeout)
	}
	if err != nil {
		return fmt.Errorf("waiting for the cache to show this controller's pod writes: %w", err)
	}
	return nil
}
