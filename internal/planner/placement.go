package planner

import (
	"sort"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	corev1helpers "k8s.io/component-helpers/scheduling/corev1"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
)

// Placement is the verdict for one node (rules 10-15).
type Placement struct {
	// ShouldRun: the node should run an agent pod.
	ShouldRun bool
	// ShouldContinueRunning: an agent pod already on the node may stay. Only an untolerated NoSchedule
	// taint gives ShouldRun=false with ShouldContinueRunning=true.
	ShouldContinueRunning bool
	// Exclusion is set whenever ShouldRun is false: one of the codes NodeNameMismatch,
	// NodeSelectorMismatch, NodeAffinityMismatch or TaintNotTolerated, with its details.
	Exclusion *NodeReason
}

// Placer evaluates eligibility of nodes for one pod template. Build it once per reconcile with
// NewPlacer and call Place for each node.
type Placer struct {
	nodeName     string
	nodeSelector map[string]string
	affinity     *nodeaffinity.LazyErrorNodeSelector
	// affinityTerms is how many required node affinity terms there are.
	affinityTerms int
	tolerations   []corev1.Toleration
}

// NewPlacer prepares the template's scheduling constraints, including the automatic tolerations the
// agent pod will carry (rule 15).
func NewPlacer(spec *corev1.PodSpec) *Placer {
	p := &Placer{
		nodeName:     spec.NodeName,
		nodeSelector: spec.NodeSelector,
		tolerations:  WithAutomaticTolerations(spec.Tolerations, spec.HostNetwork),
	}
	if a := spec.Affinity; a != nil && a.NodeAffinity != nil && a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution != nil {
		// Parse errors are ignored, as upstream does for backward compatibility (rule 12).
		p.affinity = nodeaffinity.NewLazyErrorNodeSelector(a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution)
		p.affinityTerms = len(a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms)
	}
	return p
}

// PlacerFor is the Placer of a set's pods: its template, with the toleration of its readiness gate's
// taint (gate.go), which its pods carry.
func PlacerFor(set *nasv1alpha1.NodeAgentSet) *Placer {
	if _, ok := GateToleration(set); !ok {
		return NewPlacer(&set.Spec.Template.Spec)
	}
	spec := set.Spec.Template.Spec
	spec.Tolerations = WithGateToleration(spec.Tolerations, set)
	return NewPlacer(&spec)
}

// Place decides whether the node should run the agent and whether an existing agent may stay.
func (p *Placer) Place(node *corev1.Node) Placement {
	if p.nodeName != "" && p.nodeName != node.Name {
		return excluded(false, NodeReason{Code: ReasonNodeNameMismatch, NodeName: p.nodeName})
	}
	if key, ok := p.nodeSelectorMismatch(node); !ok {
		return excluded(false, NodeReason{Code: ReasonNodeSelectorMismatch, SelectorKey: key, SelectorValue: p.nodeSelector[key]})
	}
	if p.affinity != nil {
		if match, _ := p.affinity.Match(node); !match {
			return excluded(false, NodeReason{Code: ReasonNodeAffinityMismatch, AffinityTerms: p.affinityTerms})
		}
	}
	return p.placeByTaints(node)
}

// nodeSelectorMismatch returns the key of the first nodeSelector entry (in key order) the node does
// not satisfy; an empty key when none can be named.
func (p *Placer) nodeSelectorMismatch(node *corev1.Node) (string, bool) {
	if len(p.nodeSelector) == 0 || labels.SelectorFromSet(p.nodeSelector).Matches(labels.Set(node.Labels)) {
		return "", true
	}
	keys := make([]string, 0, len(p.nodeSelector))
	for k := range p.nodeSelector {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if v, ok := node.Labels[k]; !ok || v != p.nodeSelector[k] {
			return k, false
		}
	}
	return "", false
}

// placeByTaints applies rule 13: only NoSchedule and NoExecute taints count; an untolerated NoExecute
// taint evicts, an untolerated NoSchedule taint only stops new pods. tolerationSeconds is ignored.
func (p *Placer) placeByTaints(node *corev1.Node) Placement {
	var untoleratedNoSchedule *corev1.Taint
	for i := range node.Spec.Taints {
		taint := &node.Spec.Taints[i]
		if taint.Effect != corev1.TaintEffectNoSchedule && taint.Effect != corev1.TaintEffectNoExecute {
			continue
		}
		if corev1helpers.TolerationsTolerateTaint(logr.Discard(), p.tolerations, taint, false) {
			continue
		}
		if taint.Effect == corev1.TaintEffectNoExecute {
			return excluded(false, NodeReason{Code: ReasonTaintNotTolerated, Taint: taint})
		}
		if untoleratedNoSchedule == nil {
			untoleratedNoSchedule = taint
		}
	}
	if untoleratedNoSchedule != nil {
		return excluded(true, NodeReason{Code: ReasonTaintNotTolerated, Taint: untoleratedNoSchedule})
	}
	return Placement{ShouldRun: true, ShouldContinueRunning: true}
}

func excluded(continueRunning bool, reason NodeReason) Placement {
	return Placement{ShouldContinueRunning: continueRunning, Exclusion: &reason}
}
