package nodeagentset

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
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
//
// A write the cache never shows must not wedge the controller: a delete whose pod left storage at once,
// followed by a relist (an API server restart) that folded the deletion into a replace, leaves the
// read-your-writes client waiting for a resourceVersion that only a later pod event brings, and a
// settled cluster sends none while the controller, waiting, writes nothing (seen in the chaos suite:
// a new leader's passes failed for minutes after the API server restarted). So when the wait gives
// up, the barrier checks freshness the way a new leader does (handover.go): the store must hold every
// pod the API server lists at its resourceVersion or later. That is what the barrier protects (no pod
// missed, so no second pod on a node); a pod the store still holds after it left the API server only
// makes the pass do less.
func (r *Reconciler) waitForOwnWrites(ctx context.Context) error {
	var fallback func(context.Context) error
	if r.APIReader != nil && r.stores.informers != nil {
		// Built only when the barrier gives up: a pass that finds its writes pays nothing for it.
		fallback = func(ctx context.Context) error { return newHandover(r.APIReader, r.stores).catchUp(ctx) }
	}
	return passBarrier(ctx, r.Client, barrierTimeout, fallback)
}

// passBarrier waits for the writes through c (waitForWrites); when that gives up, fallback (if any)
// gets timeout more to show the cache as fresh as the API server.
func passBarrier(ctx context.Context, c client.Reader, timeout time.Duration, fallback func(context.Context) error) error {
	err := waitForWrites(ctx, c, timeout)
	if !errors.Is(err, errCacheBehind) || fallback == nil {
		return err
	}
	bounded, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if ferr := fallback(bounded); ferr != nil {
		return fmt.Errorf("%w; nor as fresh as the API server: %w", err, ferr)
	}
	log.FromContext(ctx).Info("The cache has not shown this controller's writes, but holds every pod the API server lists: going on")
	return nil
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
