package planner

import (
	"fmt"
	"sort"
	"strings"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	corev1helpers "k8s.io/component-helpers/scheduling/corev1"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"
)

// ExclusionKind names why a node is not eligible for the agent.
type ExclusionKind string

const (
	// ExcludedByNodeName means the template names another node in spec.nodeName.
	ExcludedByNodeName ExclusionKind = "NodeNameMismatch"
	// ExcludedByNodeSelector means a template nodeSelector entry does not match the node's labels.
	ExcludedByNodeSelector ExclusionKind = "NodeSelectorMismatch"
	// ExcludedByNodeAffinity means no term of the template's required node affinity matches the node.
	ExcludedByNodeAffinity ExclusionKind = "NodeAffinityMismatch"
	// ExcludedByTaint means the node has a NoSchedule or NoExecute taint the template does not tolerate.
	ExcludedByTaint ExclusionKind = "TaintNotTolerated"
)

// Exclusion says why a node is not eligible, in words a person can act on.
type Exclusion struct {
	Kind ExclusionKind
	// Detail is the specific cause, e.g. "taint dedicated=gpu:NoSchedule" or "nodeSelector gpu=true".
	Detail string
}

// String renders the exclusion as "<detail> not tolerated" or "<detail> does not match".
func (e Exclusion) String() string {
	switch e.Kind {
	case ExcludedByTaint:
		return e.Detail + " not tolerated"
	case ExcludedByNodeName:
		return e.Detail
	default:
		return e.Detail + " does not match"
	}
}

// Placement is the verdict for one node (rules 10-15).
type Placement struct {
	// ShouldRun: the node should run an agent pod.
	ShouldRun bool
	// ShouldContinueRunning: an agent pod already on the node may stay. Only an untolerated NoSchedule
	// taint gives ShouldRun=false with ShouldContinueRunning=true.
	ShouldContinueRunning bool
	// Exclusion is set whenever ShouldRun is false.
	Exclusion *Exclusion
}

// Placer evaluates eligibility of nodes for one pod template. Build it once per reconcile with
// NewPlacer and call Place for each node.
type Placer struct {
	nodeName     string
	nodeSelector map[string]string
	affinity     *nodeaffinity.LazyErrorNodeSelector
	tolerations  []corev1.Toleration
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
	}
	return p
}

// Place decides whether the node should run the agent and whether an existing agent may stay.
func (p *Placer) Place(node *corev1.Node) Placement {
	if p.nodeName != "" && p.nodeName != node.Name {
		return excluded(false, ExcludedByNodeName, fmt.Sprintf("template spec.nodeName is %s", p.nodeName))
	}
	if detail, ok := p.nodeSelectorMismatch(node); !ok {
		return excluded(false, ExcludedByNodeSelector, detail)
	}
	if p.affinity != nil {
		if match, _ := p.affinity.Match(node); !match {
			return excluded(false, ExcludedByNodeAffinity, "required node affinity")
		}
	}
	return p.placeByTaints(node)
}

// nodeSelectorMismatch returns the first nodeSelector entry (in key order) the node does not satisfy.
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
			return fmt.Sprintf("nodeSelector %s=%s", k, p.nodeSelector[k]), false
		}
	}
	return "nodeSelector", false
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
			return excluded(false, ExcludedByTaint, "taint "+taintString(taint))
		}
		if untoleratedNoSchedule == nil {
			untoleratedNoSchedule = taint
		}
	}
	if untoleratedNoSchedule != nil {
		return excluded(true, ExcludedByTaint, "taint "+taintString(untoleratedNoSchedule))
	}
	return Placement{ShouldRun: true, ShouldContinueRunning: true}
}

func excluded(continueRunning bool, kind ExclusionKind, detail string) Placement {
	return Placement{ShouldContinueRunning: continueRunning, Exclusion: &Exclusion{Kind: kind, Detail: detail}}
}

// taintString renders a taint the way kubectl does: key=value:Effect, or key:Effect without a value.
func taintString(t *corev1.Taint) string {
	var b strings.Builder
	b.WriteString(t.Key)
	if t.Value != "" {
		b.WriteString("=")
		b.WriteString(t.Value)
	}
	b.WriteString(":")
	b.WriteString(string(t.Effect))
	return b.String()
}
