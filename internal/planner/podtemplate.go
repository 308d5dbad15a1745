package planner

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
)

// nodeNameField is the field that pins an agent pod to its node through required node affinity.
const nodeNameField = "metadata.name"

// NewPod builds the agent pod for one node (rules 16-18): a copy of the template with the automatic
// tolerations and its readiness gate's (gate.go), the revision hash label, required node affinity
// replaced by one term that matches only this node, and a controller owner reference. spec.nodeName stays empty: the scheduler binds the pod.
func NewPod(set *nasv1alpha1.NodeAgentSet, nodeName, hash string) *corev1.Pod {
	return buildPod(set, set.Spec.Template.DeepCopy(), nodeName, hash)
}

// NewNodePod builds the agent pod for one node from its override (Plan.Overrides): the rendered
// template, labelled with the override's name and spec hash. Without a rendering (o.SpecHash empty, the
// set has no overrides) it is NewPod.
func NewNodePod(set *nasv1alpha1.NodeAgentSet, nodeName, hash string, o NodeOverride) *corev1.Pod {
	if o.SpecHash == "" || o.Template == nil {
		return NewPod(set, nodeName, hash)
	}
	pod := buildPod(set, o.Template.DeepCopy(), nodeName, hash)
	if pod.Labels == nil {
		pod.Labels = map[string]string{}
	}
	pod.Labels[OverrideLabel] = o.Name
	pod.Labels[PodSpecHashLabel] = o.SpecHash
	return pod
}

func buildPod(set *nasv1alpha1.NodeAgentSet, tmpl *corev1.PodTemplateSpec, nodeName, hash string) *corev1.Pod {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName:    podNamePrefix(set.Name),
			Namespace:       set.Namespace,
			Labels:          tmpl.Labels,
			Annotations:     tmpl.Annotations,
			Finalizers:      tmpl.Finalizers,
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(set, nasv1alpha1.GroupVersion.WithKind("NodeAgentSet"))},
		},
		Spec: tmpl.Spec,
	}
	if hash != "" {
		if pod.Labels == nil {
			pod.Labels = map[string]string{}
		}
		pod.Labels[nasv1alpha1.ControllerRevisionHashLabel] = hash
	}
	pod.Spec.Tolerations = WithGateToleration(WithAutomaticTolerations(pod.Spec.Tolerations, pod.Spec.HostNetwork), set)
	pinToNode(&pod.Spec, nodeName)
	return pod
}

// pinToNode replaces the required node affinity by a single term matching the node by name (rule 17).
// The user's required terms were already evaluated by the Placer; preferred terms, pod (anti-)affinity
// and nodeSelector are kept.
func pinToNode(spec *corev1.PodSpec, nodeName string) {
	if spec.Affinity == nil {
		spec.Affinity = &corev1.Affinity{}
	}
	if spec.Affinity.NodeAffinity == nil {
		spec.Affinity.NodeAffinity = &corev1.NodeAffinity{}
	}
	spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution = &corev1.NodeSelector{
		NodeSelectorTerms: []corev1.NodeSelectorTerm{{
			MatchFields: []corev1.NodeSelectorRequirement{{
				Key:      nodeNameField,
				Operator: corev1.NodeSelectorOpIn,
				Values:   []string{nodeName},
			}},
		}},
	}
}

// podNamePrefix is "<set>-", or "<set>" when "<set>-" is not a valid generateName prefix.
func podNamePrefix(setName string) string {
	prefix := setName + "-"
	if len(validation.IsDNS1123Subdomain(prefix+"x")) != 0 {
		return setName
	}
	return prefix
}

// TargetNodeName returns the node a pod belongs to (rule 19): spec.nodeName when bound, otherwise the
// value of the first required matchFields metadata.name In [...] requirement, which must have exactly one
// value (upstream GetTargetNodeName). Pods with neither are ignored by all per-node logic.
func TargetNodeName(pod *corev1.Pod) (string, bool) {
	if pod.Spec.NodeName != "" {
		return pod.Spec.NodeName, true
	}
	a := pod.Spec.Affinity
	if a == nil || a.NodeAffinity == nil || a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		return "", false
	}
	for _, term := range a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms {
		for _, req := range term.MatchFields {
			if req.Key == nodeNameField && req.Operator == corev1.NodeSelectorOpIn {
				if len(req.Values) != 1 {
					return "", false
				}
				return req.Values[0], true
			}
		}
	}
	return "", false
}
