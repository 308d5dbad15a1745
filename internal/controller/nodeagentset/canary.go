package nodeagentset

// The controller's part of a canary (docs/design/canary.md): the planner decides; the controller
// hands it the templates of older revisions, builds the pods of the stable revision it asks for, and
// writes status.canary with the rest of the status.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
	"github.com/nodeagentset/nodeagentset/internal/planner"
)

// Event reasons of a canary's verdict, recorded when the verdict is reached.
const (
	EventCanarySucceeded           = "CanarySucceeded"
	EventCanaryWaitingForPromotion = "CanaryWaitingForPromotion"
	EventCanaryFailed              = "CanaryFailed"
	EventCanaryAborted             = "CanaryAborted"
)

// recordCanaryVerdict records an event when the plan's canary reaches a verdict the set's status does
// not show yet: succeeded (after a real canary), waiting for promotion, failed or aborted.
func (r *Reconciler) recordCanaryVerdict(set *nasv1alpha1.NodeAgentSet, plan planner.Plan) {
	next, prev := plan.Canary, set.Status.Canary
	if next == nil || (prev != nil && prev.Revision == next.Revision && prev.Phase == next.Phase) {
		return
	}
	eventType, reason := corev1.EventTypeNormal, ""
	switch next.Phase {
	case nasv1alpha1.CanarySucceeded:
		if len(next.Nodes) > 0 {
			reason = EventCanarySucceeded
		}
	case nasv1alpha1.CanaryWaitingForPromotion:
		reason = EventCanaryWaitingForPromotion
	case nasv1alpha1.CanaryFailed:
		eventType, reason = corev1.EventTypeWarning, EventCanaryFailed
	case nasv1alpha1.CanaryAborted:
		eventType, reason = corev1.EventTypeWarning, EventCanaryAborted
	}
	if reason != "" {
		r.Recorder.Eventf(set, nil, eventType, reason, "Canary", "%s", next.Message)
	}
}

// olderRevisions decodes the templates of the set's older revisions, and the nodeOverrides of those
// that had any, by hash, for a canary to hold nodes at one of them; nil when the set has no canary. A
// revision whose data does not decode is left out (the canary then does not hold nodes at it).
func olderRevisions(set *nasv1alpha1.NodeAgentSet, history *revisions) (map[string]*corev1.PodTemplateSpec,
	map[string][]nasv1alpha1.NodeOverride) {
	ru := set.Spec.UpdateStrategy.RollingUpdate
	if ru == nil || ru.Canary == nil || set.Spec.UpdateStrategy.Type == nasv1alpha1.OnDeleteStrategyType {
		return nil, nil
	}
	templates := make(map[string]*corev1.PodTemplateSpec, len(history.old))
	var overrides map[string][]nasv1alpha1.NodeOverride
	for _, cr := range history.old {
		var data struct {
			Spec struct {
				Template      corev1.PodTemplateSpec     `json:"template"`
				NodeOverrides []nasv1alpha1.NodeOverride `json:"nodeOverrides"`
			} `json:"spec"`
		}
		hash := cr.Labels[nasv1alpha1.ControllerRevisionHashLabel]
		if err := json.Unmarshal(cr.Data.Raw, &data); err != nil || hash == "" {
			continue
		}
		templates[hash] = &data.Spec.Template
		if len(data.Spec.NodeOverrides) > 0 {
			if overrides == nil {
				overrides = map[string][]nasv1alpha1.NodeOverride{}
			}
			overrides[hash] = data.Spec.NodeOverrides
		}
	}
	return templates, overrides
}

// createCanaryHeldPods creates the pods the plan makes of another revision than the current one
// (Plan.CreateRevisions): the set with that revision's template builds them, each from that revision's
// override for its node when it had nodeOverrides (Plan.CreateOverrides). It returns the creates of the
// current revision, for createNodePods.
func (r *Reconciler) createCanaryHeldPods(ctx context.Context, set *nasv1alpha1.NodeAgentSet, plan planner.Plan) ([]string, error) {
	if len(plan.CreateRevisions) == 0 {
		return plan.Creates, nil
	}
	current := make([]string, 0, len(plan.Creates))
	byRevision := map[string][]string{}
	for _, node := range plan.Creates {
		if hash, ok := plan.CreateRevisions[node]; ok {
			byRevision[hash] = append(byRevision[hash], node)
		} else {
			current = append(current, node)
		}
	}
	var errs []error
	for hash, nodes := range byRevision {
		tmpl := plan.RevisionTemplates[hash]
		if tmpl == nil {
			errs = append(errs, fmt.Errorf("revision %s: template not found", hash))
			continue
		}
		held := set.DeepCopy()
		held.Spec.Template = *tmpl.DeepCopy()
		errs = append(errs, r.createNodePods(ctx, held, hash, nodes, plan.CreateOverrides))
	}
	return current, errors.Join(errs...)
}

// canaryDecisionChanged passes the updates of a set whose canary-decision annotation changed: a
// person's decision does not change the generation, which the set's other updates are filtered on.
func canaryDecisionChanged() predicate.Predicate {
	return predicate.Funcs{
		CreateFunc:  func(event.CreateEvent) bool { return false },
		DeleteFunc:  func(event.DeleteEvent) bool { return false },
		GenericFunc: func(event.GenericEvent) bool { return false },
		UpdateFunc: func(e event.UpdateEvent) bool {
			return decisionOf(e.ObjectOld) != decisionOf(e.ObjectNew)
		},
	}
}

func decisionOf(obj client.Object) string {
	if obj == nil {
		return ""
	}
	return obj.GetAnnotations()[nasv1alpha1.CanaryDecisionAnnotation]
}
