package nodeagentset

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// stuckGrace is how long past its timeout a pass may still run before /healthz reports the worker
// stuck: a pass answers its context's end within moments, one that does not has a worker blocked on
// something that ignores it, and a restart is the cure.
const stuckGrace = time.Minute

// handoverRetry is when a pass that found the leader handover not yet done comes back.
const handoverRetry = time.Second

// guardedReconciler wraps the Reconciler as the controller runs it: a pass waits for the leader
// handover (handover.go), runs under a timeout, and is tracked, so that /healthz can tell when a
// worker is stuck.
type guardedReconciler struct {
	next     reconcile.Reconciler
	handover *handover
	fence    *LeaseFence // nil: no leader election.
	timeout  time.Duration
	clock    clock.PassiveClock

	mu      sync.Mutex
	nextID  uint64
	running map[uint64]running
}

type running struct {
	req   reconcile.Request
	since time.Time
}

func newGuardedReconciler(next reconcile.Reconciler, h *handover, timeout time.Duration, clk clock.PassiveClock) *guardedReconciler {
	return &guardedReconciler{next: next, handover: h, timeout: timeout, clock: clk, running: map[uint64]running{}}
}

// Reconcile runs one pass of next, once the handover is done and while this replica is sure it leads
// (fence.go), with at most timeout.
func (g *guardedReconciler) Reconcile(ctx context.Context, req reconcile.Request) (ctrl.Result, error) {
	if !g.fence.held() {
		// A replica frozen past its lease runs its queued passes the moment it thaws, from a cache as
		// old as the freeze: they wait until the next renewal says it still leads (or it stops).
		return ctrl.Result{RequeueAfter: handoverRetry}, nil
	}
	if g.handover != nil {
		select {
		case <-g.handover.caughtUp():
		case <-ctx.Done():
			return ctrl.Result{}, ctx.Err()
		default:
			return ctrl.Result{RequeueAfter: handoverRetry}, nil
		}
	}
	defer g.track(req)()
	ctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	return g.next.Reconcile(ctx, req)
}

// track records a pass as running; the returned function ends the record.
func (g *guardedReconciler) track(req reconcile.Request) func() {
	g.mu.Lock()
	defer g.mu.Unlock()
	id := g.nextID
	g.nextID++
	g.running[id] = running{req: req, since: g.clock.Now()}
	return func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		delete(g.running, id)
	}
}

// healthy is the /healthz check: it fails while a pass has run longer than its timeout plus
// stuckGrace.
func (g *guardedReconciler) healthy(*http.Request) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.clock.Now()
	for _, r := range g.running {
		if age := now.Sub(r.since); age > g.timeout+stuckGrace {
			return fmt.Errorf("the pass over %s has run for %s, past its timeout of %s: the worker is stuck", r.req, age.Round(time.Second), g.timeout)
		}
	}
	return nil
}
