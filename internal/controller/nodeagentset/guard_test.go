package nodeagentset

import (
	"context"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// reconcilerFunc adapts a function to reconcile.Reconciler.
type reconcilerFunc func(context.Context, reconcile.Request) (ctrl.Result, error)

func (f reconcilerFunc) Reconcile(ctx context.Context, req reconcile.Request) (ctrl.Result, error) {
	return f(ctx, req)
}

var setRequest = reconcile.Request{NamespacedName: types.NamespacedName{Namespace: "ns", Name: "agent"}}

func caughtUpHandover() *handover {
	h := &handover{done: make(chan struct{})}
	close(h.done)
	return h
}

func TestGuardedPassEndsAtItsTimeout(t *testing.T) {
	blocked := reconcilerFunc(func(ctx context.Context, _ reconcile.Request) (ctrl.Result, error) {
		<-ctx.Done()
		return ctrl.Result{}, ctx.Err()
	})
	g := newGuardedReconciler(blocked, caughtUpHandover(), 50*time.Millisecond, clocktesting.NewFakePassiveClock(time.Now()))
	done := make(chan error)
	go func() {
		_, err := g.Reconcile(context.Background(), setRequest)
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Errorf("a pass cut off by its timeout returned no error")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the pass did not end at its timeout")
	}
}

func TestHealthFailsWhileAPassRunsFarPastItsTimeout(t *testing.T) {
	clk := clocktesting.NewFakePassiveClock(time.Now())
	release, started := make(chan struct{}), make(chan struct{})
	stuck := reconcilerFunc(func(context.Context, reconcile.Request) (ctrl.Result, error) {
		close(started)
		<-release // ignores its context, as a worker blocked in a call without one would.
		return ctrl.Result{}, nil
	})
	timeout := time.Minute
	g := newGuardedReconciler(stuck, caughtUpHandover(), timeout, clk)
	if err := g.healthy(nil); err != nil {
		t.Fatalf("healthy with no pass running: %v", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = g.Reconcile(context.Background(), setRequest)
	}()
	<-started

	clk.SetTime(clk.Now().Add(timeout))
	if err := g.healthy(nil); err != nil {
		t.Errorf("healthy at the timeout, within the grace: got %v", err)
	}
	clk.SetTime(clk.Now().Add(stuckGrace + time.Second))
	if err := g.healthy(nil); err == nil {
		t.Errorf("healthy with a pass running %s past its timeout, want an error", stuckGrace+time.Second)
	}
	close(release)
	<-done
	if err := g.healthy(nil); err != nil {
		t.Errorf("still unhealthy after the stuck pass ended: %v", err)
	}
}

func TestPassesWaitForTheLeaderHandover(t *testing.T) {
	ran := false
	next := reconcilerFunc(func(context.Context, reconcile.Request) (ctrl.Result, error) {
		ran = true
		return ctrl.Result{}, nil
	})
	h := &handover{done: make(chan struct{})}
	g := newGuardedReconciler(next, h, time.Minute, clocktesting.NewFakePassiveClock(time.Now()))
	res, err := g.Reconcile(context.Background(), setRequest)
	if err != nil || ran || res.RequeueAfter != handoverRetry {
		t.Errorf("before the handover: ran=%v result=%+v err=%v, want a requeue after %s and no pass", ran, res, err, handoverRetry)
	}
	close(h.done)
	if _, err := g.Reconcile(context.Background(), setRequest); err != nil || !ran {
		t.Errorf("after the handover: ran=%v err=%v, want the pass", ran, err)
	}
}
