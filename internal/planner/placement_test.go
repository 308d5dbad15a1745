package planner

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// verdict is a Placement reduced to what the tables compare.
type verdict struct {
	shouldRun, shouldContinueRunning bool
	// kind is the exclusion's code, "" when the node is eligible; exclusion its details, in the
	// tables' own notation: the taint as key=value:Effect, the selector entry as key=value, the nodeName.
	exclusion string
	kind      ReasonCode
}

func verdictOf(p Placement) verdict {
	v := verdict{shouldRun: p.ShouldRun, shouldContinueRunning: p.ShouldContinueRunning}
	if e := p.Exclusion; e != nil {
		v.kind = e.Code
		switch e.Code {
		case ReasonTaintNotTolerated:
			v.exclusion = fmt.Sprintf("%s=%s:%s", e.Taint.Key, e.Taint.Value, e.Taint.Effect)
		case ReasonNodeSelectorMismatch:
			v.exclusion = e.SelectorKey + "=" + e.SelectorValue
		case ReasonNodeNameMismatch:
			v.exclusion = e.NodeName
		}
	}
	return v
}

var eligible = verdict{shouldRun: true, shouldContinueRunning: true}

func resourceSpec(nodeName, memory, cpu string) corev1.PodSpec {
	return corev1.PodSpec{
		NodeName: nodeName,
		Containers: []corev1.Container{{
			Name: "agent",
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
				corev1.ResourceMemory: resource.MustParse(memory),
				corev1.ResourceCPU:    resource.MustParse(cpu),
			}},
		}},
	}
}

// TestNodeShouldRunDaemonPod is upstream's table (3.1 #44): the node is labeled like the set's pods and
// has 100M memory and 1 CPU. Resources, host ports, other pods and spec.unschedulable are the
// scheduler's business, never the placer's (rule 14).
func TestNodeShouldRunDaemonPod(t *testing.T) {
	node := newNode("test-node", setLabels, func(n *corev1.Node) {
		n.Status.Allocatable = corev1.ResourceList{
			corev1.ResourceMemory: resource.MustParse("100M"),
			corev1.ResourceCPU:    resource.MustParse("1"),
			corev1.ResourcePods:   resource.MustParse("100"),
		}
	})
	withHostPort := func(spec corev1.PodSpec) corev1.PodSpec {
		spec.Containers[0].Ports = []corev1.ContainerPort{{HostPort: 666}}
		return spec
	}
	withSelector := func(spec corev1.PodSpec, sel map[string]string) corev1.PodSpec {
		spec.NodeSelector = sel
		return spec
	}
	withAffinity := func(spec corev1.PodSpec, values ...string) corev1.PodSpec {
		spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
			RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
				MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "type", Operator: corev1.NodeSelectorOpIn, Values: values}},
			}}},
		}}
		return spec
	}
	tests := []struct {
		name          string
		spec          corev1.PodSpec
		unschedulable bool
		want          verdict
	}{
		{name: "fits", spec: resourceSpec("", "50M", "0.5"), want: eligible},
		{name: "insufficient resources", spec: resourceSpec("", "200M", "0.5"), want: eligible},
		{
			name: "template nodeName names another node", spec: resourceSpec("other-node", "50M", "0.5"),
			want: verdict{kind: ReasonNodeNameMismatch, exclusion: "other-node"},
		},
		{name: "host port already used on the node", spec: withHostPort(resourceSpec("", "50M", "0.5")), want: eligible},
		{name: "resources overcommitted by another pod", spec: resourceSpec("", "75M", "0.75"), want: eligible},
		{name: "template nodeName is this node", spec: resourceSpec("test-node", "50M", "0.5"), want: eligible},
		{
			name: "nodeSelector does not match", spec: withSelector(resourceSpec("", "50M", "0.5"), map[string]string{"type": "test"}),
			want: verdict{kind: ReasonNodeSelectorMismatch, exclusion: "type=test"},
		},
		{name: "nodeSelector matches", spec: withSelector(resourceSpec("", "50M", "0.5"), setLabels), want: eligible},
		{
			name: "required affinity does not match", spec: withAffinity(resourceSpec("", "50M", "0.5"), "test"),
			want: verdict{kind: ReasonNodeAffinityMismatch, exclusion: ""},
		},
		{name: "required affinity matches", spec: withAffinity(resourceSpec("", "50M", "0.5"), "production"), want: eligible},
		{name: "unschedulable node without taint", spec: resourceSpec("", "50M", "0.5"), unschedulable: true, want: eligible},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := node.DeepCopy()
			n.Spec.Unschedulable = tt.unschedulable
			if got := verdictOf(NewPlacer(&tt.spec).Place(n)); got != tt.want {
				t.Errorf("Place() = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func term(reqs ...corev1.NodeSelectorRequirement) corev1.NodeSelectorTerm {
	return corev1.NodeSelectorTerm{MatchExpressions: reqs}
}

func fieldTerm(reqs ...corev1.NodeSelectorRequirement) corev1.NodeSelectorTerm {
	return corev1.NodeSelectorTerm{MatchFields: reqs}
}

func req(key string, op corev1.NodeSelectorOperator, values ...string) corev1.NodeSelectorRequirement {
	return corev1.NodeSelectorRequirement{Key: key, Operator: op, Values: values}
}

func requiredAffinity(terms ...corev1.NodeSelectorTerm) *corev1.Affinity {
	return &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
		RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: terms},
	}}
}

// TestPlaceNodeSelection covers rules 11 and 12: template nodeName, nodeSelector and required node
// affinity, which all give (false, false) on a mismatch.
func TestPlaceNodeSelection(t *testing.T) {
	gpuNode := newNode("node-1", map[string]string{"gpu": "true", "zone": "a"})
	notSelected := func(kind ReasonCode, msg string) verdict { return verdict{kind: kind, exclusion: msg} }
	tests := []struct {
		name string
		spec corev1.PodSpec
		node *corev1.Node
		want verdict
	}{
		{name: "no constraints", spec: corev1.PodSpec{}, node: gpuNode, want: eligible},
		{name: "nodeName is the node", spec: corev1.PodSpec{NodeName: "node-1"}, node: gpuNode, want: eligible},
		{
			name: "nodeName is another node", spec: corev1.PodSpec{NodeName: "node-2"}, node: gpuNode,
			want: notSelected(ReasonNodeNameMismatch, "node-2"),
		},
		{
			name: "nodeName is checked before the selector", spec: corev1.PodSpec{NodeName: "node-2", NodeSelector: map[string]string{"gpu": "false"}}, node: gpuNode,
			want: notSelected(ReasonNodeNameMismatch, "node-2"),
		},
		{name: "nodeSelector all keys match", spec: corev1.PodSpec{NodeSelector: map[string]string{"gpu": "true", "zone": "a"}}, node: gpuNode, want: eligible},
		{
			name: "nodeSelector value differs", spec: corev1.PodSpec{NodeSelector: map[string]string{"gpu": "false"}}, node: gpuNode,
			want: notSelected(ReasonNodeSelectorMismatch, "gpu=false"),
		},
		{
			name: "nodeSelector key missing", spec: corev1.PodSpec{NodeSelector: map[string]string{"gpu": "true"}}, node: newNode("node-1", nil),
			want: notSelected(ReasonNodeSelectorMismatch, "gpu=true"),
		},
		{
			name: "nodeSelector names the first mismatching key in key order",
			spec: corev1.PodSpec{NodeSelector: map[string]string{"zone": "b", "arch": "arm64", "gpu": "true"}}, node: gpuNode,
			want: notSelected(ReasonNodeSelectorMismatch, "arch=arm64"),
		},
		{
			name: "affinity terms are ORed: second term matches",
			spec: corev1.PodSpec{Affinity: requiredAffinity(term(req("zone", corev1.NodeSelectorOpIn, "b")), term(req("gpu", corev1.NodeSelectorOpExists)))},
			node: gpuNode, want: eligible,
		},
		{
			name: "affinity: no term matches",
			spec: corev1.PodSpec{Affinity: requiredAffinity(term(req("zone", corev1.NodeSelectorOpIn, "b")), term(req("gpu", corev1.NodeSelectorOpDoesNotExist)))},
			node: gpuNode, want: notSelected(ReasonNodeAffinityMismatch, ""),
		},
		{
			name: "affinity: requirements inside a term are ANDed",
			spec: corev1.PodSpec{Affinity: requiredAffinity(term(req("gpu", corev1.NodeSelectorOpIn, "true"), req("zone", corev1.NodeSelectorOpNotIn, "a")))},
			node: gpuNode, want: notSelected(ReasonNodeAffinityMismatch, ""),
		},
		{
			name: "affinity matchFields metadata.name selects the node",
			spec: corev1.PodSpec{Affinity: requiredAffinity(fieldTerm(req("metadata.name", corev1.NodeSelectorOpIn, "node-1")))},
			node: gpuNode, want: eligible,
		},
		{
			name: "affinity matchFields metadata.name excludes other nodes",
			spec: corev1.PodSpec{Affinity: requiredAffinity(fieldTerm(req("metadata.name", corev1.NodeSelectorOpIn, "node-1")))},
			node: newNode("node-2", nil), want: notSelected(ReasonNodeAffinityMismatch, ""),
		},
		{
			name: "affinity matchFields and matchExpressions are ANDed in a term",
			spec: corev1.PodSpec{Affinity: requiredAffinity(corev1.NodeSelectorTerm{
				MatchExpressions: []corev1.NodeSelectorRequirement{req("gpu", corev1.NodeSelectorOpIn, "true")},
				MatchFields:      []corev1.NodeSelectorRequirement{req("metadata.name", corev1.NodeSelectorOpNotIn, "node-1")},
			})},
			node: gpuNode, want: notSelected(ReasonNodeAffinityMismatch, ""),
		},
		{
			name: "nodeSelector and affinity are ANDed: selector matches, affinity does not",
			spec: corev1.PodSpec{NodeSelector: map[string]string{"gpu": "true"}, Affinity: requiredAffinity(term(req("zone", corev1.NodeSelectorOpIn, "b")))},
			node: gpuNode, want: notSelected(ReasonNodeAffinityMismatch, ""),
		},
		{
			name: "nodeSelector and affinity are ANDed: affinity matches, selector does not",
			spec: corev1.PodSpec{NodeSelector: map[string]string{"zone": "b"}, Affinity: requiredAffinity(term(req("gpu", corev1.NodeSelectorOpExists)))},
			node: gpuNode, want: notSelected(ReasonNodeSelectorMismatch, "zone=b"),
		},
		{
			name: "affinity parse errors are ignored: the valid term still matches",
			spec: corev1.PodSpec{Affinity: requiredAffinity(term(req("gpu", "Bogus", "x")), term(req("zone", corev1.NodeSelectorOpIn, "a")))},
			node: gpuNode, want: eligible,
		},
		{
			name: "affinity with only an unparsable term matches nothing",
			spec: corev1.PodSpec{Affinity: requiredAffinity(term(req("gpu", "Bogus", "x")))},
			node: gpuNode, want: notSelected(ReasonNodeAffinityMismatch, ""),
		},
		{
			name: "preferred affinity is ignored",
			spec: corev1.PodSpec{Affinity: &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
				PreferredDuringSchedulingIgnoredDuringExecution: []corev1.PreferredSchedulingTerm{{
					Weight: 100, Preference: term(req("zone", corev1.NodeSelectorOpIn, "b")),
				}},
			}}},
			node: gpuNode, want: eligible,
		},
		{
			name: "pod anti-affinity is ignored",
			spec: corev1.PodSpec{Affinity: &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
				RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{{
					LabelSelector: &metav1.LabelSelector{MatchLabels: setLabels}, TopologyKey: "kubernetes.io/hostname",
				}},
			}}},
			node: gpuNode, want: eligible,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := verdictOf(NewPlacer(&tt.spec).Place(tt.node)); got != tt.want {
				t.Errorf("Place() = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func taint(key, value string, effect corev1.TaintEffect) corev1.Taint {
	return corev1.Taint{Key: key, Value: value, Effect: effect}
}

// TestPlaceTaints covers rules 13 and 15: only NoSchedule and NoExecute count; an untolerated NoSchedule
// taint gives (false, true), an untolerated NoExecute taint (false, false); tolerationSeconds is ignored;
// the automatic tolerations let agents onto not-ready, unreachable, pressured and cordoned nodes.
func TestPlaceTaints(t *testing.T) {
	dedicatedNoSchedule := taint("dedicated", "gpu", corev1.TaintEffectNoSchedule)
	dedicatedNoExecute := taint("dedicated", "gpu", corev1.TaintEffectNoExecute)
	keepRunning := func(msg string) verdict {
		return verdict{shouldContinueRunning: true, kind: ReasonTaintNotTolerated, exclusion: msg}
	}
	evict := func(msg string) verdict { return verdict{kind: ReasonTaintNotTolerated, exclusion: msg} }
	tests := []struct {
		name        string
		taints      []corev1.Taint
		tolerations []corev1.Toleration
		hostNetwork bool
		want        verdict
	}{
		{name: "no taints", want: eligible},
		{
			name:   "untolerated NoSchedule: keep running, no new pod",
			taints: []corev1.Taint{dedicatedNoSchedule},
			want:   keepRunning("dedicated=gpu:NoSchedule"),
		},
		{name: "untolerated NoExecute: evict", taints: []corev1.Taint{dedicatedNoExecute}, want: evict("dedicated=gpu:NoExecute")},
		{name: "PreferNoSchedule is ignored", taints: []corev1.Taint{taint("dedicated", "gpu", corev1.TaintEffectPreferNoSchedule)}, want: eligible},
		{
			name:   "taint without value renders key:Effect",
			taints: []corev1.Taint{taint("dedicated", "", corev1.TaintEffectNoSchedule)},
			want:   keepRunning("dedicated=:NoSchedule"),
		},
		{
			name:   "untolerated NoSchedule and NoExecute: NoExecute wins",
			taints: []corev1.Taint{dedicatedNoSchedule, taint("other", "x", corev1.TaintEffectNoExecute)},
			want:   evict("other=x:NoExecute"),
		},
		{
			name:   "two untolerated NoSchedule taints: the first is named",
			taints: []corev1.Taint{taint("b", "", corev1.TaintEffectNoSchedule), taint("a", "", corev1.TaintEffectNoSchedule)},
			want:   keepRunning("b=:NoSchedule"),
		},
		{
			name:        "untolerated NoSchedule, tolerated NoExecute: keep running",
			taints:      []corev1.Taint{dedicatedNoSchedule, taint("other", "x", corev1.TaintEffectNoExecute)},
			tolerations: []corev1.Toleration{{Key: "other", Operator: corev1.TolerationOpEqual, Value: "x", Effect: corev1.TaintEffectNoExecute}},
			want:        keepRunning("dedicated=gpu:NoSchedule"),
		},
		{
			name:   "Equal toleration with the taint's value",
			taints: []corev1.Taint{dedicatedNoSchedule},
			tolerations: []corev1.Toleration{{
				Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "gpu", Effect: corev1.TaintEffectNoSchedule,
			}},
			want: eligible,
		},
		{
			name:   "Equal toleration with another value",
			taints: []corev1.Taint{dedicatedNoSchedule},
			tolerations: []corev1.Toleration{{
				Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "cpu", Effect: corev1.TaintEffectNoSchedule,
			}},
			want: keepRunning("dedicated=gpu:NoSchedule"),
		},
		{
			name:        "Exists toleration ignores the value",
			taints:      []corev1.Taint{dedicatedNoExecute},
			tolerations: []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute}},
			want:        eligible,
		},
		{
			name:        "empty effect tolerates every effect",
			taints:      []corev1.Taint{dedicatedNoSchedule, dedicatedNoExecute},
			tolerations: []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpExists}},
			want:        eligible,
		},
		{
			name:        "empty key with Exists tolerates every taint",
			taints:      []corev1.Taint{dedicatedNoSchedule, taint("other", "x", corev1.TaintEffectNoExecute)},
			tolerations: []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
			want:        eligible,
		},
		{
			name:        "NoSchedule toleration does not tolerate the NoExecute taint",
			taints:      []corev1.Taint{dedicatedNoExecute},
			tolerations: []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}},
			want:        evict("dedicated=gpu:NoExecute"),
		},
		{
			name:   "tolerationSeconds is ignored: a time-limited NoExecute toleration counts as tolerated",
			taints: []corev1.Taint{dedicatedNoExecute},
			tolerations: []corev1.Toleration{{
				Key: "dedicated", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr.To[int64](10),
			}},
			want: eligible,
		},
		{name: "automatic: not-ready NoExecute", taints: []corev1.Taint{taint(corev1.TaintNodeNotReady, "", corev1.TaintEffectNoExecute)}, want: eligible},
		{name: "automatic: unreachable NoExecute", taints: []corev1.Taint{taint(corev1.TaintNodeUnreachable, "", corev1.TaintEffectNoExecute)}, want: eligible},
		{name: "automatic: disk-pressure NoSchedule", taints: []corev1.Taint{taint(corev1.TaintNodeDiskPressure, "", corev1.TaintEffectNoSchedule)}, want: eligible},
		{
			name:   "automatic: memory-pressure NoSchedule",
			taints: []corev1.Taint{taint(corev1.TaintNodeMemoryPressure, "", corev1.TaintEffectNoSchedule)}, want: eligible,
		},
		{name: "automatic: pid-pressure NoSchedule", taints: []corev1.Taint{taint(corev1.TaintNodePIDPressure, "", corev1.TaintEffectNoSchedule)}, want: eligible},
		{
			name:   "automatic: cordoned node (unschedulable NoSchedule)",
			taints: []corev1.Taint{taint(corev1.TaintNodeUnschedulable, "", corev1.TaintEffectNoSchedule)}, want: eligible,
		},
		{
			name:   "network-unavailable is not tolerated without hostNetwork",
			taints: []corev1.Taint{taint(corev1.TaintNodeNetworkUnavailable, "", corev1.TaintEffectNoSchedule)},
			want:   keepRunning("node.kubernetes.io/network-unavailable=:NoSchedule"),
		},
		{
			name:        "network-unavailable is tolerated with hostNetwork",
			taints:      []corev1.Taint{taint(corev1.TaintNodeNetworkUnavailable, "", corev1.TaintEffectNoSchedule)},
			hostNetwork: true,
			want:        eligible,
		},
		{
			name:   "not-ready NoSchedule is not tolerated: no new pod, the old one stays",
			taints: []corev1.Taint{taint(corev1.TaintNodeNotReady, "", corev1.TaintEffectNoSchedule), taint(corev1.TaintNodeNotReady, "", corev1.TaintEffectNoExecute)},
			want:   keepRunning("node.kubernetes.io/not-ready=:NoSchedule"),
		},
		{
			name:   "unreachable NoSchedule is not tolerated",
			taints: []corev1.Taint{taint(corev1.TaintNodeUnreachable, "", corev1.TaintEffectNoSchedule)},
			want:   keepRunning("node.kubernetes.io/unreachable=:NoSchedule"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := corev1.PodSpec{Tolerations: tt.tolerations, HostNetwork: tt.hostNetwork}
			node := newNode("node-1", nil, withTaints(tt.taints...))
			if got := verdictOf(NewPlacer(&spec).Place(node)); got != tt.want {
				t.Errorf("Place() = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestPlaceIgnoresNodeState: node conditions and spec.unschedulable are not the placer's business
// (rule 14; upstream TestNotReadyNodeDaemonDoesLaunchPod, TestNetworkUnavailableNodeDaemonLaunchesPod).
func TestPlaceIgnoresNodeState(t *testing.T) {
	tests := []struct {
		name string
		node *corev1.Node
	}{
		{name: "Ready=False", node: newNode("n", nil, withNodeCondition(corev1.NodeReady, corev1.ConditionFalse))},
		{name: "Ready=Unknown", node: newNode("n", nil, withNodeCondition(corev1.NodeReady, corev1.ConditionUnknown))},
		{name: "NetworkUnavailable=True without taint", node: newNode("n", nil, withNodeCondition(corev1.NodeNetworkUnavailable, corev1.ConditionTrue))},
		{name: "MemoryPressure=True without taint", node: newNode("n", nil, withNodeCondition(corev1.NodeMemoryPressure, corev1.ConditionTrue))},
		{name: "spec.unschedulable without taint", node: newNode("n", nil, func(n *corev1.Node) { n.Spec.Unschedulable = true })},
		{name: "no allocatable at all", node: newNode("n", nil, func(n *corev1.Node) { n.Status.Allocatable = nil })},
	}
	spec := resourceSpec("", "1Gi", "2")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := verdictOf(NewPlacer(&spec).Place(tt.node)); got != eligible {
				t.Errorf("Place() = %+v, want eligible", got)
			}
		})
	}
}

// TestPlaceUsesTemplateAtConstruction: the placer is built once per reconcile; later edits of the spec
// it was built from do not change its verdicts, and Place never modifies the node.
func TestPlaceUsesTemplateAtConstruction(t *testing.T) {
	spec := corev1.PodSpec{Tolerations: []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpExists}}}
	placer := NewPlacer(&spec)
	spec.Tolerations = nil
	node := newNode("node-1", nil, withTaints(taint("dedicated", "gpu", corev1.TaintEffectNoExecute)))
	before := node.DeepCopy()
	if got := verdictOf(placer.Place(node)); got != eligible {
		t.Errorf("Place() = %+v, want eligible", got)
	}
	if len(node.Spec.Taints) != len(before.Spec.Taints) || node.Spec.Taints[0] != before.Spec.Taints[0] {
		t.Errorf("Place modified the node: %+v", node.Spec.Taints)
	}
}
