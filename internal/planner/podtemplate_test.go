package planner

import (
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
)

// pinnedTo is the single required term every agent pod gets (rule 17).
func pinnedTo(node string) *corev1.NodeSelector {
	return &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
		MatchFields: []corev1.NodeSelectorRequirement{{Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: []string{node}}},
	}}}
}

// TestCreatePodTemplate is upstream's TestCreatePodTemplate (3.3): the hash label is set only when the
// hash is non-empty. There is no pod-template-generation label (deliberate difference 4).
func TestCreatePodTemplate(t *testing.T) {
	tests := []struct {
		name       string
		hash       string
		wantLabels map[string]string
	}{
		{name: "empty hash: no hash label", hash: "", wantLabels: setLabels},
		{
			name: "hash label added", hash: "3242341807",
			wantLabels: map[string]string{"name": "simple-daemon", "type": "production", "controller-revision-hash": "3242341807"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := NewPod(newSet(), "node-0", tt.hash)
			if !reflect.DeepEqual(pod.Labels, tt.wantLabels) {
				t.Errorf("labels = %v, want %v", pod.Labels, tt.wantLabels)
			}
			if _, ok := pod.Labels["pod-template-generation"]; ok {
				t.Errorf("pod-template-generation label set: %v", pod.Labels)
			}
		})
	}
	t.Run("template without labels gets only the hash label", func(t *testing.T) {
		set := newSet(func(s *nasv1alpha1.NodeAgentSet) { s.Spec.Template.Labels = nil })
		pod := NewPod(set, "node-0", "abc")
		if want := map[string]string{"controller-revision-hash": "abc"}; !reflect.DeepEqual(pod.Labels, want) {
			t.Errorf("labels = %v, want %v", pod.Labels, want)
		}
	})
}

// TestReplaceDaemonSetPodNodeNameNodeAffinity is upstream's table (3.3, all 8 cases): whatever required
// node affinity the template has, the pod gets exactly one term matchFields metadata.name In [node];
// preferred terms are kept.
func TestReplaceDaemonSetPodNodeNameNodeAffinity(t *testing.T) {
	hostnamePreferred := []corev1.PreferredSchedulingTerm{{
		Preference: corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{
			{Key: corev1.LabelHostname, Operator: corev1.NodeSelectorOpIn, Values: []string{"host_1"}},
		}},
	}}
	tests := []struct {
		name     string
		affinity *corev1.Affinity
		want     *corev1.Affinity
	}{
		{
			name: "nil affinity",
			want: &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: pinnedTo("host_1")}},
		},
		{
			name:     "required hostname matchExpression",
			affinity: requiredAffinity(term(req(corev1.LabelHostname, corev1.NodeSelectorOpIn, "host_1"))),
			want:     &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: pinnedTo("host_1")}},
		},
		{
			name:     "preferred terms only: kept, required added",
			affinity: &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{PreferredDuringSchedulingIgnoredDuringExecution: hostnamePreferred}},
			want: &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
				PreferredDuringSchedulingIgnoredDuringExecution: hostnamePreferred,
				RequiredDuringSchedulingIgnoredDuringExecution:  pinnedTo("host_1"),
			}},
		},
		{
			name:     "multi-value matchFields",
			affinity: requiredAffinity(fieldTerm(req("metadata.name", corev1.NodeSelectorOpIn, "host_1", "host_2"))),
			want:     &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: pinnedTo("host_1")}},
		},
		{
			name:     "empty affinity object",
			affinity: &corev1.Affinity{},
			want:     &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: pinnedTo("host_1")}},
		},
		{
			name: "multiple terms",
			affinity: requiredAffinity(
				term(req("hostname", corev1.NodeSelectorOpIn, "host_1")),
				fieldTerm(req("metadata.name", corev1.NodeSelectorOpIn, "host_2")),
			),
			want: &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: pinnedTo("host_1")}},
		},
		{
			name:     "NotIn",
			affinity: requiredAffinity(fieldTerm(req("metadata.name", corev1.NodeSelectorOpNotIn, "host_2"))),
			want:     &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: pinnedTo("host_1")}},
		},
		{
			name:     "unknown field key metadata.foo",
			affinity: requiredAffinity(fieldTerm(req("metadata.foo", corev1.NodeSelectorOpIn, "bar"))),
			want:     &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: pinnedTo("host_1")}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set := newSet(func(s *nasv1alpha1.NodeAgentSet) { s.Spec.Template.Spec.Affinity = tt.affinity })
			before := set.DeepCopy()
			pod := NewPod(set, "host_1", curHash)
			if !reflect.DeepEqual(pod.Spec.Affinity, tt.want) {
				t.Errorf("affinity\n got  %+v\n want %+v", pod.Spec.Affinity, tt.want)
			}
			if !reflect.DeepEqual(set, before) {
				t.Errorf("NewPod modified the set's template")
			}
		})
	}
}

// TestGetTargetNodeName is upstream's TestGetTargetNodeName (3.3, rule 19) plus the edges of the
// affinity lookup.
func TestGetTargetNodeName(t *testing.T) {
	podWith := func(spec corev1.PodSpec) *corev1.Pod { return &corev1.Pod{Spec: spec} }
	tests := []struct {
		name     string
		pod      *corev1.Pod
		wantNode string
		wantOK   bool
	}{
		{name: "spec.nodeName", pod: podWith(corev1.PodSpec{NodeName: "node-1"}), wantNode: "node-1", wantOK: true},
		{
			name:     "matchFields with one value",
			pod:      podWith(corev1.PodSpec{Affinity: requiredAffinity(fieldTerm(req("metadata.name", corev1.NodeSelectorOpIn, "node-1")))}),
			wantNode: "node-1", wantOK: true,
		},
		{
			name: "matchFields with two values",
			pod:  podWith(corev1.PodSpec{Affinity: requiredAffinity(fieldTerm(req("metadata.name", corev1.NodeSelectorOpIn, "node-1", "node-2")))}),
		},
		{name: "neither nodeName nor affinity", pod: podWith(corev1.PodSpec{})},
		{
			name:     "spec.nodeName wins over affinity",
			pod:      podWith(corev1.PodSpec{NodeName: "node-1", Affinity: requiredAffinity(fieldTerm(req("metadata.name", corev1.NodeSelectorOpIn, "node-2")))}),
			wantNode: "node-1", wantOK: true,
		},
		{name: "affinity without node affinity", pod: podWith(corev1.PodSpec{Affinity: &corev1.Affinity{}})},
		{name: "node affinity without required terms", pod: podWith(corev1.PodSpec{Affinity: &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{}}})},
		{name: "required with no terms", pod: podWith(corev1.PodSpec{Affinity: requiredAffinity()})},
		{
			name: "metadata.name as a label expression does not count",
			pod:  podWith(corev1.PodSpec{Affinity: requiredAffinity(term(req("metadata.name", corev1.NodeSelectorOpIn, "node-1")))}),
		},
		{
			name: "NotIn does not count",
			pod:  podWith(corev1.PodSpec{Affinity: requiredAffinity(fieldTerm(req("metadata.name", corev1.NodeSelectorOpNotIn, "node-1")))}),
		},
		{
			name: "another field key does not count",
			pod:  podWith(corev1.PodSpec{Affinity: requiredAffinity(fieldTerm(req("metadata.foo", corev1.NodeSelectorOpIn, "node-1")))}),
		},
		{
			name: "found in a later term",
			pod: podWith(corev1.PodSpec{Affinity: requiredAffinity(
				term(req("zone", corev1.NodeSelectorOpIn, "a")),
				fieldTerm(req("metadata.foo", corev1.NodeSelectorOpIn, "x"), req("metadata.name", corev1.NodeSelectorOpIn, "node-3")),
			)}),
			wantNode: "node-3", wantOK: true,
		},
		{
			// Upstream stops at the first metadata.name In requirement and fails when it does not have
			// exactly one value, even if a later one has.
			name: "first metadata.name In requirement has two values, a later one has one",
			pod: podWith(corev1.PodSpec{Affinity: requiredAffinity(
				fieldTerm(req("metadata.name", corev1.NodeSelectorOpIn, "node-1", "node-2")),
				fieldTerm(req("metadata.name", corev1.NodeSelectorOpIn, "node-3")),
			)}),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			node, ok := TargetNodeName(tt.pod)
			if node != tt.wantNode || ok != tt.wantOK {
				t.Errorf("TargetNodeName() = (%q, %t), want (%q, %t)", node, ok, tt.wantNode, tt.wantOK)
			}
		})
	}
}

// hostAccessSet is an agent with every kind of host access an agent may need.
func hostAccessSet() *nasv1alpha1.NodeAgentSet {
	return newSet(func(s *nasv1alpha1.NodeAgentSet) {
		s.Namespace = "kube-system"
		tmpl := &s.Spec.Template
		tmpl.Annotations = map[string]string{"prometheus.io/scrape": "true"}
		tmpl.Finalizers = []string{"example.com/cleanup"}
		spec := &tmpl.Spec
		spec.HostNetwork = true
		spec.HostPID = true
		spec.HostIPC = true
		spec.DNSPolicy = corev1.DNSClusterFirstWithHostNet
		spec.PriorityClassName = "system-node-critical"
		spec.ServiceAccountName = "agent"
		spec.NodeSelector = map[string]string{"kubernetes.io/os": "linux"}
		spec.Tolerations = []corev1.Toleration{
			{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "gpu", Effect: corev1.TaintEffectNoSchedule},
			{Key: "node.kubernetes.io/not-ready", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr.To[int64](300)},
		}
		spec.Affinity = &corev1.Affinity{
			NodeAffinity: &corev1.NodeAffinity{
				RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{
					term(req("kubernetes.io/arch", corev1.NodeSelectorOpIn, "amd64")),
				}},
				PreferredDuringSchedulingIgnoredDuringExecution: []corev1.PreferredSchedulingTerm{{
					Weight: 10, Preference: term(req("zone", corev1.NodeSelectorOpIn, "a")),
				}},
			},
			PodAntiAffinity: &corev1.PodAntiAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{{
				LabelSelector: &metav1.LabelSelector{MatchLabels: setLabels}, TopologyKey: corev1.LabelHostname,
			}}},
		}
		spec.Volumes = []corev1.Volume{{
			Name:         "host-root",
			VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/", Type: ptr.To(corev1.HostPathDirectory)}},
		}}
		spec.Containers = []corev1.Container{{
			Name: "agent", Image: "example.com/agent:1",
			Ports:           []corev1.ContainerPort{{Name: "metrics", ContainerPort: 9100, HostPort: 9100}},
			SecurityContext: &corev1.SecurityContext{Privileged: ptr.To(true), Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"SYS_ADMIN"}}},
			VolumeMounts: []corev1.VolumeMount{{
				Name: "host-root", MountPath: "/host", ReadOnly: true, MountPropagation: ptr.To(corev1.MountPropagationHostToContainer),
			}},
		}}
	})
}

// TestNewPod covers rules 16-18 on a pod: metadata, owner reference, tolerations, pinned affinity and a
// spec that is otherwise the template's, host access included.
func TestNewPod(t *testing.T) {
	set := hostAccessSet()
	before := set.DeepCopy()
	pod := NewPod(set, "node-7", curHash)

	t.Run("metadata", func(t *testing.T) { checkNewPodMetadata(t, pod, set) })

	t.Run("controller owner reference", func(t *testing.T) {
		want := []metav1.OwnerReference{{
			APIVersion: "apps.nodeagentset.io/v1alpha1", Kind: "NodeAgentSet", Name: "foo", UID: types.UID("set-uid"),
			Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true),
		}}
		if !reflect.DeepEqual(pod.OwnerReferences, want) {
			t.Errorf("ownerReferences = %+v, want %+v", pod.OwnerReferences, want)
		}
		if ref := metav1.GetControllerOf(pod); ref == nil || ref.UID != set.UID {
			t.Errorf("GetControllerOf = %+v, want the set", ref)
		}
	})

	t.Run("spec is the template's except tolerations and required node affinity", func(t *testing.T) {
		want := before.Spec.Template.Spec.DeepCopy()
		want.Tolerations = concat([]corev1.Toleration{want.Tolerations[0], autoTolerations[0]}, autoTolerations[1:], []corev1.Toleration{networkUnavailable})
		want.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution = pinnedTo("node-7")
		if !reflect.DeepEqual(&pod.Spec, want) {
			t.Errorf("spec\n got  %+v\n want %+v", pod.Spec, *want)
		}
		if pod.Spec.NodeName != "" {
			t.Errorf("spec.nodeName = %q, want empty: the scheduler binds", pod.Spec.NodeName)
		}
	})

	t.Run("host access passed through", func(t *testing.T) { checkHostAccess(t, pod.Spec) })

	t.Run("the set is not modified and pods share nothing with it", func(t *testing.T) {
		if !reflect.DeepEqual(set, before) {
			t.Fatalf("NewPod modified the set")
		}
		other := NewPod(set, "node-8", curHash)
		other.Labels["x"] = "y"
		other.Annotations["x"] = "y"
		other.Spec.Containers[0].Image = "changed"
		other.Spec.Tolerations[0].Key = "changed"
		if !reflect.DeepEqual(set, before) {
			t.Errorf("a pod shares memory with the set's template")
		}
		if _, ok := pod.Labels["x"]; ok || pod.Spec.Containers[0].Image == "changed" {
			t.Errorf("two pods share memory")
		}
	})

	t.Run("the pod maps back to its node", func(t *testing.T) {
		if node, ok := TargetNodeName(pod); !ok || node != "node-7" {
			t.Errorf("TargetNodeName = (%q, %t), want node-7", node, ok)
		}
	})
}

// checkNewPodMetadata checks the metadata NewPod gives a pod of hostAccessSet.
func checkNewPodMetadata(t *testing.T, pod *corev1.Pod, set *nasv1alpha1.NodeAgentSet) {
	t.Helper()
	if pod.Name != "" || pod.GenerateName != "foo-" || pod.Namespace != "kube-system" {
		t.Errorf("name %q, generateName %q, namespace %q; want \"\", \"foo-\", \"kube-system\"", pod.Name, pod.GenerateName, pod.Namespace)
	}
	wantLabels := map[string]string{"name": "simple-daemon", "type": "production", "controller-revision-hash": curHash}
	if !reflect.DeepEqual(pod.Labels, wantLabels) {
		t.Errorf("labels = %v, want %v", pod.Labels, wantLabels)
	}
	if !reflect.DeepEqual(pod.Annotations, set.Spec.Template.Annotations) {
		t.Errorf("annotations = %v, want the template's %v", pod.Annotations, set.Spec.Template.Annotations)
	}
	if !reflect.DeepEqual(pod.Finalizers, []string{"example.com/cleanup"}) {
		t.Errorf("finalizers = %v, want the template's", pod.Finalizers)
	}
}

// checkHostAccess checks that the host access of hostAccessSet reaches the pod's spec.
func checkHostAccess(t *testing.T, s corev1.PodSpec) {
	t.Helper()
	c := s.Containers[0]
	switch {
	case !s.HostNetwork, !s.HostPID, !s.HostIPC:
		t.Errorf("host namespaces dropped: hostNetwork=%t hostPID=%t hostIPC=%t", s.HostNetwork, s.HostPID, s.HostIPC)
	case c.SecurityContext == nil || c.SecurityContext.Privileged == nil || !*c.SecurityContext.Privileged:
		t.Errorf("privileged dropped: %+v", c.SecurityContext)
	case len(c.Ports) != 1 || c.Ports[0].HostPort != 9100:
		t.Errorf("hostPort dropped: %+v", c.Ports)
	case len(s.Volumes) != 1 || s.Volumes[0].HostPath == nil || s.Volumes[0].HostPath.Path != "/":
		t.Errorf("hostPath dropped: %+v", s.Volumes)
	case s.PriorityClassName != "system-node-critical":
		t.Errorf("priorityClassName = %q", s.PriorityClassName)
	}
}

func TestNewPodWithoutHostNetworkHasNoNetworkUnavailableToleration(t *testing.T) {
	pod := NewPod(newSet(), "node-0", curHash)
	if !reflect.DeepEqual(pod.Spec.Tolerations, autoTolerations) {
		t.Errorf("tolerations\n got  %+v\n want %+v", pod.Spec.Tolerations, autoTolerations)
	}
}

// TestNewPodKeepsTemplateNodeName: a template that names its node keeps spec.nodeName (rule 17's
// exception); the pinned affinity is added all the same.
func TestNewPodKeepsTemplateNodeName(t *testing.T) {
	pod := NewPod(newSet(withNodeName("node-0")), "node-0", curHash)
	if pod.Spec.NodeName != "node-0" {
		t.Errorf("spec.nodeName = %q, want node-0", pod.Spec.NodeName)
	}
	if got := pod.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution; !reflect.DeepEqual(got, pinnedTo("node-0")) {
		t.Errorf("required affinity = %+v", got)
	}
}

func TestNewPodGenerateName(t *testing.T) {
	tests := []struct{ setName, want string }{
		{setName: "foo", want: "foo-"},
		{setName: "node-exporter", want: "node-exporter-"},
		{setName: "agent.example.com", want: "agent.example.com-"},
		{setName: strings.Repeat("a", 200), want: strings.Repeat("a", 200) + "-"},
	}
	for _, tt := range tests {
		t.Run(tt.setName[:min(len(tt.setName), 20)], func(t *testing.T) {
			set := newSet(func(s *nasv1alpha1.NodeAgentSet) { s.Name = tt.setName })
			if got := NewPod(set, "node-0", curHash).GenerateName; got != tt.want {
				t.Errorf("generateName = %q, want %q", got, tt.want)
			}
		})
	}
}
