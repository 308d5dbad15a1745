package nodeagentset

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
	"github.com/nodeagentset/nodeagentset/internal/planner"
)

// When a template verdict other than Accepted may be asked again (planner.TemplateVerdict.RecheckAt).
const (
	// templateRejectedRecheck: the cause of a rejection may lie outside the template (the namespace's
	// Pod Security level, an admission policy), so a rejected template is tried again after a while.
	templateRejectedRecheck = 5 * time.Minute
	// A missing ServiceAccount is usually created a moment later (it was applied after the set, or the
	// namespace is new and its default account not there yet): retry soon, then less often.
	serviceAccountRecheckInitial = 2 * time.Second
	serviceAccountRecheckMax     = time.Minute
	// A check that failed (throttled, a server error, a timeout) is retried with a backoff.
	checkFailedRecheckInitial = time.Second
	checkFailedRecheckMax     = 5 * time.Minute
)

// checkTemplate asks the API server whether it accepts the set's pod, with a server-side dry-run create
// on node, so a template that the schema cannot catch (duplicate container names, a bad image
// reference, a Pod Security violation) is reported on the set instead of failing every create in a hot
// loop. With nodeOverrides, the pod of each node the plan names is checked (the first node, then one
// per other override in use, planner.Plan.CheckOverridesOn), each rendered for its node, and the
// first refusal is the verdict. The verdict is remembered for the revision and returned; a check that
// failed is returned as an error too, so the pass reports it and backs off.
func (r *Reconciler) checkTemplate(ctx context.Context, set *nasv1alpha1.NodeAgentSet, hash string, plan planner.Plan) (planner.TemplateVerdict, error) {
	var err error
	for _, node := range append([]string{plan.CheckTemplateOn}, plan.CheckOverridesOn...) {
		// A dry-run stores nothing, so there is no write for later reads to wait for.
		pod := planner.NewNodePod(set, node, hash, plan.Overrides[node])
		if err = r.Client.Create(ctx, pod, client.DryRunAll, client.DisableReadYourWritesConsistency); err != nil {
			break
		}
	}
	state := templateState(err)
	message := ""
	if err != nil {
		message = err.Error()
	}
	v := r.memory.recordTemplateVerdict(set, hash, state, message, r.Clock.Now())
	switch state {
	case planner.TemplateRejected, planner.TemplateServiceAccountMissing:
		r.Recorder.Eventf(set, nil, corev1.EventTypeWarning, EventFailedCreate, "Create", "Error creating: %s", message)
	case planner.TemplateCheckFailed:
		return v, fmt.Errorf("dry-run create of the pod template: %w", err)
	}
	return v, nil
}

// templateState classifies the API server's answer to a create of the set's pod. Only a definite
// refusal of the pod itself is a verdict on the template: validation, Pod Security, an admission
// webhook's or a ValidatingAdmissionPolicy's denial. A missing ServiceAccount is its own state. Anything
// else (exhausted quota, a LimitRange, a terminating namespace, a missing permission, throttling, a
// server error, a webhook that could not be called) says nothing about the template: CheckFailed.
func templateState(err error) planner.TemplateState {
	switch {
	case err == nil:
		return planner.TemplateAccepted
	case isServiceAccountMissing(err):
		return planner.TemplateServiceAccountMissing
	case isTemplateRejection(err):
		return planner.TemplateRejected
	default:
		return planner.TemplateCheckFailed
	}
}

// isServiceAccountMissing: the ServiceAccount admission plugin found no account of the pod's name,
// e.g. `pods "x" is forbidden: error looking up service account ns/agent: serviceaccount "agent" not found`.
func isServiceAccountMissing(err error) bool {
	msg := err.Error()
	return apierrors.IsForbidden(err) && strings.Contains(msg, "error looking up service account") &&
		strings.Contains(msg, "not found")
}

// isTemplateRejection: the API server refused the pod itself.
func isTemplateRejection(err error) bool {
	if apierrors.IsInvalid(err) || apierrors.IsBadRequest(err) {
		// Validation; also the default code of an admission webhook's denial.
		return true
	}
	msg := err.Error()
	switch {
	case apierrors.IsForbidden(err) && strings.Contains(msg, "violates PodSecurity"):
		return true
	case strings.Contains(msg, "admission webhook \"") && strings.Contains(msg, "\" denied the request"):
		// A webhook chooses its denial's code; a webhook that could not be called says "failed calling webhook".
		return true
	case strings.Contains(msg, "ValidatingAdmissionPolicy '") && strings.Contains(msg, "denied request"):
		// A policy's denial is Invalid unless its validation names another reason.
		return true
	default:
		return false
	}
}
