package nodeagentset

import (
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
	"github.com/nodeagentset/nodeagentset/internal/planner"
)

// statusInput is what the new status is derived from.
type statusInput struct {
	set  *nasv1alpha1.NodeAgentSet
	plan planner.Plan
	// hash is the controller-revision-hash of the current template.
	hash string
	// synced: the pass carried out its plan without error, so observedGeneration may advance.
	synced bool
	// template is the dry-run verdict on the current template, nil when none was needed.
	template *templateVerdict
	now      metav1.Time
}

// computeStatus derives the set's status from one pass: counters from the plan, observedGeneration
// when the pass succeeded, and the conditions this controller owns. Conditions of other types are
// kept as they are. Pure: the caller decides whether to write.
func computeStatus(in statusInput) nasv1alpha1.NodeAgentSetStatus {
	st := *in.set.Status.DeepCopy()
	c := in.plan.Status
	st.DesiredNumberScheduled = c.DesiredNumberScheduled
	st.CurrentNumberScheduled = c.CurrentNumberScheduled
	st.NumberMisscheduled = c.NumberMisscheduled
	st.NumberReady = c.NumberReady
	st.NumberAvailable = c.NumberAvailable
	st.NumberUnavailable = c.NumberUnavailable
	st.UpdatedNumberScheduled = c.UpdatedNumberScheduled
	st.UpdateRevision = in.hash
	st.CurrentRevision = in.plan.CurrentRevision
	if in.synced {
		st.ObservedGeneration = in.set.Generation
	}
	setCondition(&st, in.now, availableCondition(in))
	setCondition(&st, in.now, progressingCondition(in))
	if c, ok := planner.TemplateValidCondition(planWithTemplate(in)); ok {
		setCondition(&st, in.now, c)
	} else {
		meta.RemoveStatusCondition(&st.Conditions, nasv1alpha1.ConditionPodTemplateValid)
	}
	return st
}

// progressingCondition says where the rollout of the current template stands, as the planner
// renders its rollout verdict.
func progressingCondition(in statusInput) metav1.Condition {
	return planner.ProgressingCondition(in.plan, in.hash)
}

// planWithTemplate is the plan with the controller's own template verdict, for as long as the
// planner's input does not carry it (Input.Template): the conditions render the plan's.
func planWithTemplate(in statusInput) planner.Plan {
	p := in.plan
	if p.Template.State != planner.TemplateUnchecked || in.template == nil {
		return p
	}
	if in.template.accepted {
		p.Template = planner.TemplateVerdict{State: planner.TemplateAccepted}
	} else {
		p.Template = planner.TemplateVerdict{State: planner.TemplateRejected, Message: in.template.message}
	}
	return p
}

func setCondition(st *nasv1alpha1.NodeAgentSetStatus, now metav1.Time, c metav1.Condition) {
	c.ObservedGeneration = 0
	if existing := meta.FindStatusCondition(st.Conditions, c.Type); existing != nil &&
		existing.Status == c.Status && existing.Reason == c.Reason && existing.Message == c.Message {
		return
	}
	c.LastTransitionTime = now
	meta.SetStatusCondition(&st.Conditions, c)
}

// availableCondition says whether every eligible node runs an available agent and, if not, why, as
// the planner renders it.
func availableCondition(in statusInput) metav1.Condition {
	return planner.AvailableCondition(planWithTemplate(in))
}

// statusChanged: the derived status differs from the stored one.
func statusChanged(old, updated *nasv1alpha1.NodeAgentSetStatus) bool {
	return !equality.Semantic.DeepEqual(old, updated)
}
