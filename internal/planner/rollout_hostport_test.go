package planner

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
)

func TestHostPorts(t *testing.T) {
	cases := map[string]struct {
		spec corev1.PodSpec
		want []int32
	}{
		"no ports": {spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "a"}}}},
		"container port only": {spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "a",
			Ports: []corev1.ContainerPort{{ContainerPort: 8080}}}}}},
		"hostPort": {spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "a",
			Ports: []corev1.ContainerPort{{ContainerPort: 8080, HostPort: 9100}}}}}, want: []int32{9100}},
		"hostNetwork makes container ports host ports": {spec: corev1.PodSpec{HostNetwork: true, Containers: []corev1.Container{{Name: "a",
			Ports: []corev1.ContainerPort{{ContainerPort: 8080}}}}}, want: []int32{8080}},
		// Regression (issue 14, defect 3): sidecars were not looked at; the scheduler counts them.
		"a sidecar's hostPort counts": {spec: corev1.PodSpec{
			InitContainers: []corev1.Container{{Name: "s", RestartPolicy: ptrTo(corev1.ContainerRestartPolicyAlways),
				Ports: []corev1.ContainerPort{{ContainerPort: 9000, HostPort: 9000}}}},
			Containers: []corev1.Container{{Name: "a"}}}, want: []int32{9000}},
		"a plain init container's hostPort does not": {spec: corev1.PodSpec{
			InitContainers: []corev1.Container{{Name: "i", Ports: []corev1.ContainerPort{{ContainerPort: 9000, HostPort: 9000}}}},
			Containers:     []corev1.Container{{Name: "a"}}}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := HostPorts(&tc.spec)
			if len(got) != len(tc.want) || (len(got) > 0 && got[0] != tc.want[0]) {
				t.Errorf("HostPorts = %v, want %v", got, tc.want)
			}
		})
	}
}

// A surge rollout of a hostPort template replaces delete-first: it never puts a second pod, which
// could not bind the port, on a node.
func TestSurgeWithHostPortFallsBackToDeleteFirst(t *testing.T) {
	set := &nasv1alpha1.NodeAgentSet{Spec: nasv1alpha1.NodeAgentSetSpec{
		Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "agent", Image: "v2", Ports: []corev1.ContainerPort{{ContainerPort: 9100, HostPort: 9100}},
		}}}},
		UpdateStrategy: nasv1alpha1.NodeAgentSetUpdateStrategy{
			Type:          nasv1alpha1.RollingUpdateStrategyType,
			RollingUpdate: &nasv1alpha1.RollingUpdateNodeAgentSet{MaxSurge: ptrIntOrString(intstr.FromInt32(2))},
		},
	}}
	s := resolveStrategy(set, 5)
	if s.surge || !s.surgeBlockedByHostPort || s.maxUnavailable != 1 || s.maxSurge != 0 {
		t.Fatalf("strategy = %+v, want delete-first with maxUnavailable 1", s)
	}
	withUnavailable := set.DeepCopy()
	withUnavailable.Spec.UpdateStrategy.RollingUpdate.MaxUnavailable = ptrIntOrString(intstr.FromString("40%"))
	if s := resolveStrategy(withUnavailable, 5); s.surge || !s.surgeBlockedByHostPort || s.maxUnavailable != 2 {
		t.Fatalf("strategy with maxUnavailable 40%% = %+v, want delete-first with maxUnavailable 2", s)
	}
	withoutPort := set.DeepCopy()
	withoutPort.Spec.Template.Spec.Containers[0].Ports[0].HostPort = 0
	if s := resolveStrategy(withoutPort, 5); !s.surge || s.surgeBlockedByHostPort {
		t.Fatalf("strategy without hostPort = %+v, want surge", s)
	}
}

func ptrIntOrString(v intstr.IntOrString) *intstr.IntOrString { return &v }

func ptrTo[T any](v T) *T { return &v }

// Regression (issue 14, defect 3): with maxSurge 100% and a hostNetwork agent, the fallback used the
// surge as its unavailability budget and deleted every agent in one pass. It deletes one.
func TestSurgeAllWithHostNetworkDeletesOne(t *testing.T) {
	set := newSet(withStrategy(maxSurge(intstr.FromString("100%"))), func(s *nasv1alpha1.NodeAgentSet) {
		s.Spec.Template.Spec.HostNetwork = true
		s.Spec.Template.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 9100}}
	})
	nodes := newNodes(0, 5, nil)
	pods := make([]*corev1.Pod, 0, len(nodes))
	for _, n := range nodes {
		pods = append(pods, newPod(n.Name+"-old", n.Name, withHash("old"), ready))
	}
	p := Compute(Input{Set: set, Hash: curHash, Nodes: nodes, Pods: pods, Now: t0})
	if !p.Strategy.HostPortFallback || p.Strategy.Surge || p.Strategy.MaxUnavailable != 1 || len(p.Strategy.HostPorts) != 1 {
		t.Errorf("strategy = %+v, want the host port fallback with maxUnavailable 1", p.Strategy)
	}
	assertPlan(t, p, nil, []del{{Pod: "node-0-old", Node: "node-0", Reason: DeleteOutdated}})
}

// The same at the level of a plan: 5 nodes with available old pods, maxSurge 2, hostPort template:
// one old pod goes (maxUnavailable would have allowed 0, so 1), nothing is created next to it.
func TestSurgeWithHostPortPlansDeleteFirst(t *testing.T) {
	set := newSet(withStrategy(maxSurge(intstr.FromInt32(2))), func(s *nasv1alpha1.NodeAgentSet) {
		s.Spec.Template.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 9100, HostPort: 9100}}
	})
	nodes := newNodes(0, 5, nil)
	pods := make([]*corev1.Pod, 0, len(nodes))
	for _, n := range nodes {
		pods = append(pods, newPod(n.Name+"-old", n.Name, withHash("old"), ready))
	}
	p := Compute(Input{Set: set, Hash: curHash, Nodes: nodes, Pods: pods, Now: t0, Template: accepted})
	if !p.Strategy.HostPortFallback {
		t.Error("Strategy.HostPortFallback = false")
	}
	assertPlan(t, p, nil, []del{
		{Pod: "node-0-old", Node: "node-0", Reason: DeleteOutdated},
	})
}
