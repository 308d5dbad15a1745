package nodeagentset

import (
	"context"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
	"github.com/nodeagentset/nodeagentset/internal/planner"
)

// templateRecheckInterval is how long a rejected template waits before it is tried again (the cause
// may be outside the template: the namespace's Pod Security level, an admission policy).
const templateRecheckInterval = 5 * time.Minute

// templateVerdict is the API server's answer to a server-side dry-run create of a set's pod.
type templateVerdict struct {
	uid       types.UID
	hash      string
	accepted  bool
	message   string
	checkedAt time.Time
}

// templateChecker asks the API server, once per template revision, whether it accepts the pod, so a
// template that the schema cannot catch (duplicate container names, a bad image reference, a Pod
// Security violation) is reported on the set instead of failing every create in a hot loop.
type templateChecker struct {
	client client.Client
	clock  clock.Clock

	mu       sync.Mutex
	verdicts map[types.NamespacedName]templateVerdict
}

func newTemplateChecker(c client.Client, clk clock.Clock) *templateChecker {
	return &templateChecker{client: c, clock: clk, verdicts: map[types.NamespacedName]templateVerdict{}}
}

// check returns the verdict for the set's current template, asking the API server with a dry-run
// create on node when there is no fresh verdict.
func (t *templateChecker) check(ctx context.Context, set *nasv1alpha1.NodeAgentSet, hash, node string) (templateVerdict, error) {
	if v, ok := t.cached(set, hash); ok && (v.accepted || t.clock.Since(v.checkedAt) < templateRecheckInterval) {
		return v, nil
	}
	// A dry-run stores nothing, so there is no write for later reads to wait for.
	err := t.client.Create(ctx, planner.NewPod(set, node, hash), client.DryRunAll, client.DisableReadYourWritesConsistency)
	switch {
	case err == nil:
		return t.store(set, templateVerdict{hash: hash, accepted: true, checkedAt: t.clock.Now()}), nil
	case isTemplateRejection(err):
		return t.store(set, templateVerdict{hash: hash, message: err.Error(), checkedAt: t.clock.Now()}), nil
	default:
		// Could not find out (API server busy, timeout): let the real creates speak.
		return templateVerdict{hash: hash, accepted: true}, err
	}
}

// cached returns the verdict for the current template if there is one.
func (t *templateChecker) cached(set *nasv1alpha1.NodeAgentSet, hash string) (templateVerdict, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	v, ok := t.verdicts[client.ObjectKeyFromObject(set)]
	return v, ok && v.uid == set.UID && v.hash == hash
}

// reject records a real create refused for a reason that lies in the template.
func (t *templateChecker) reject(set *nasv1alpha1.NodeAgentSet, hash string, err error) {
	t.store(set, templateVerdict{hash: hash, message: err.Error(), checkedAt: t.clock.Now()})
}

func (t *templateChecker) store(set *nasv1alpha1.NodeAgentSet, v templateVerdict) templateVerdict {
	t.mu.Lock()
	defer t.mu.Unlock()
	v.uid = set.UID
	t.verdicts[client.ObjectKeyFromObject(set)] = v
	return v
}

// forget drops what is known about a set that no longer exists.
func (t *templateChecker) forget(key types.NamespacedName) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.verdicts, key)
}

// isTemplateRejection: the API server refused the pod itself (validation, admission such as Pod
// Security), as opposed to a transient or quota failure.
func isTemplateRejection(err error) bool {
	if apierrors.IsInvalid(err) || apierrors.IsBadRequest(err) {
		return true
	}
	// Admission denials are Forbidden; exhausted quota is Forbidden too but is not the template's fault.
	return apierrors.IsForbidden(err) && !isQuotaExceeded(err)
}

func isQuotaExceeded(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "exceeded quota") || strings.Contains(msg, "failed quota")
}
