package nodeagentset

import (
	"context"
	"errors"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"
)

// blockingReader is a cache that never catches up: every List waits until its context ends.
type blockingReader struct{ client.Reader }

func (blockingReader) List(ctx context.Context, _ client.ObjectList, _ ...client.ListOption) error {
	<-ctx.Done()
	return ctx.Err()
}

// readyReader is a cache that has caught up; it records the options of the last List.
type readyReader struct {
	client.Reader
	opts *client.ListOptions
}

func (r readyReader) List(_ context.Context, _ client.ObjectList, opts ...client.ListOption) error {
	r.opts.ApplyOptions(opts)
	return nil
}

func TestReadBarrierGivesUpWhenTheCacheNeverCatchesUp(t *testing.T) {
	start := time.Now()
	err := waitForWrites(context.Background(), blockingReader{}, 50*time.Millisecond)
	if !errors.Is(err, errCacheBehind) {
		t.Fatalf("err = %v, want errCacheBehind", err)
	}
	if waited := time.Since(start); waited > 5*time.Second {
		t.Errorf("the barrier waited %s, want about its timeout", waited)
	}
}

func TestReadBarrierPassesTheCallersCancellationOn(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := waitForWrites(ctx, blockingReader{}, time.Minute)
	if err == nil || errors.Is(err, errCacheBehind) || !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want the caller's cancellation, not errCacheBehind", err)
	}
}

func TestReadBarrierListsNothing(t *testing.T) {
	var opts client.ListOptions
	if err := waitForWrites(context.Background(), readyReader{opts: &opts}, time.Second); err != nil {
		t.Fatal(err)
	}
	value, ok := opts.FieldSelector.RequiresExactMatch(indexPodNode)
	if !ok || value != barrierProbeNode {
		t.Errorf("the barrier lists %v, want the pod index for the node no pod targets", opts.FieldSelector)
	}
}

// A barrier that gives up does not wedge the controller when the cache is as fresh as the API server
// (the fallback), and still fails when it is not.
func TestReadBarrierFallsBackToTheAPIServersView(t *testing.T) {
	fresh := func(context.Context) error { return nil }
	if err := passBarrier(context.Background(), blockingReader{}, 20*time.Millisecond, fresh); err != nil {
		t.Errorf("with a cache as fresh as the API server: err = %v, want nil", err)
	}
	behind := func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }
	if err := passBarrier(context.Background(), blockingReader{}, 20*time.Millisecond, behind); !errors.Is(err, errCacheBehind) {
		t.Errorf("with a cache behind the API server: err = %v, want errCacheBehind", err)
	}
	if err := passBarrier(context.Background(), blockingReader{}, 20*time.Millisecond, nil); !errors.Is(err, errCacheBehind) {
		t.Errorf("without a fallback: err = %v, want errCacheBehind", err)
	}
}
