package nodeagentset

import (
	"context"
	"fmt"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"
)

// handoverPageSize is how many pods' metadata one page of the handover's quorum list holds.
const handoverPageSize = 500

// handoverTimeout bounds one attempt to catch up; an attempt that times out starts over with a new
// quorum list.
const handoverTimeout = 30 * time.Second

// handover makes a new leader wait, before its first pass, until its pod cache is as fresh as the API
// server. The read barrier covers only this process's own writes; a replica that just won the lease
// may not have seen the last pods the old leader created, and would create them a second time. So
// once elected it lists every pod's metadata from the API server (a quorum read, in pages of one
// snapshot) and waits until its store holds each listed pod at that resourceVersion or later, or has
// seen an event past it. Passes wait for done (guardedReconciler).
type handover struct {
	apiReader client.Reader
	stores    stores
	done      chan struct{}
}

func newHandover(apiReader client.Reader, s stores) *handover {
	return &handover{apiReader: apiReader, stores: s, done: make(chan struct{})}
}

// Start runs once this replica leads: it retries catchUp until it succeeds, then opens the gate.
func (h *handover) Start(ctx context.Context) error {
	logger := log.FromContext(ctx).WithName("handover")
	start := time.Now()
	err := wait.PollUntilContextCancel(ctx, time.Second, true, func(ctx context.Context) (bool, error) {
		if err := h.catchUp(ctx); err != nil {
			logger.Info("Pod cache not yet as fresh as the API server; trying again", "err", err.Error())
			return false, nil
		}
		return true, nil
	})
	if err != nil {
		return nil //nolint:nilerr // the manager is stopping.
	}
	logger.Info("Pod cache caught up with the API server", "after", time.Since(start).Round(time.Millisecond).String())
	close(h.done)
	return nil
}

// NeedLeaderElection: the wait is for the leader's first pass.
func (h *handover) NeedLeaderElection() bool { return true }

// caughtUp is closed once the cache is as fresh as the API server was when this replica was elected.
func (h *handover) caughtUp() <-chan struct{} { return h.done }

// catchUp lists every pod's metadata from the API server and waits, up to handoverTimeout, until the
// pod store is at least as fresh for each.
func (h *handover) catchUp(ctx context.Context) error {
	idx, err := h.stores.indexer(ctx, &corev1.Pod{})
	if err != nil {
		return err
	}
	pending := map[string]int64{}
	cont := ""
	for {
		var page metav1.PartialObjectMetadataList
		page.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("PodList"))
		if err := h.apiReader.List(ctx, &page, client.Limit(handoverPageSize), client.Continue(cont)); err != nil {
			return fmt.Errorf("listing pods from the API server: %w", err)
		}
		for i := range page.Items {
			key := page.Items[i].Namespace + "/" + page.Items[i].Name
			rv, err := strconv.ParseInt(page.Items[i].ResourceVersion, 10, 64)
			if err != nil {
				return fmt.Errorf("pod %s: resourceVersion %q: %w", key, page.Items[i].ResourceVersion, err)
			}
			if !storeHolds(idx, key, rv) {
				pending[key] = rv
			}
		}
		if cont = page.Continue; cont == "" {
			break
		}
	}
	return wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, handoverTimeout, true, func(context.Context) (bool, error) {
		for key, rv := range pending {
			if storeHolds(idx, key, rv) {
				delete(pending, key)
			}
		}
		return len(pending) == 0, nil
	})
}

// storeHolds reports whether the store is at least as fresh as resourceVersion rv of the object key:
// it holds the object at rv or later, or it has applied an event past rv (the object may be gone
// since).
func storeHolds(idx toolscache.Indexer, key string, rv int64) bool {
	if seen, err := strconv.ParseInt(idx.LastStoreSyncResourceVersion(), 10, 64); err == nil && seen >= rv {
		return true
	}
	obj, ok, err := idx.GetByKey(key)
	if err != nil || !ok {
		return false
	}
	m, err := metaRV(obj)
	return err == nil && m >= rv
}

func metaRV(obj any) (int64, error) {
	o, ok := obj.(client.Object)
	if !ok {
		return 0, fmt.Errorf("%T is not an object", obj)
	}
	return strconv.ParseInt(o.GetResourceVersion(), 10, 64)
}

var _ manager.LeaderElectionRunnable = &handover{}
