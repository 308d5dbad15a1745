package controller

import (
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
	"github.com/nodeagentset/nodeagentset/internal/planner"
)

// setAllocatable writes the node's status.allocatable, as a kubelet reports it.
func (s *scenario) setAllocatable(name, cpu, memory string) {
	Eventually(func() error {
		node := &corev1.Node{}
		if err := k8s.Get(ctx, client.ObjectKey{Name: s.nodeName(name)}, node); err != nil {
			return err
		}
		node.Status.Allocatable = corev1.ResourceList{
			corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(memory),
			corev1.ResourcePods: resource.MustParse("110"),
		}
		return k8s.Status().Update(ctx, node)
	}, timeout, interval).Should(Succeed())
}

// gpuAndBySize are the overrides of these tests: gpu nodes get imageV2 and an env var, every other
// node 1% of its allocatable memory, at least 64Mi.
func gpuAndBySize(gpuImage string) func(*nasv1alpha1.NodeAgentSet) {
	return func(set *nasv1alpha1.NodeAgentSet) {
		set.Spec.NodeOverrides = []nasv1alpha1.NodeOverride{
			{
				Name:         "gpu",
				NodeSelector: metav1.LabelSelector{MatchLabels: map[string]string{"gpu": "true"}},
				Containers: []nasv1alpha1.ContainerOverride{{
					Name: "agent", Image: gpuImage, Env: []corev1.EnvVar{{Name: "GPU_METRICS", Value: "on"}},
				}},
			},
			{
				Name: "by-size",
				Containers: []nasv1alpha1.ContainerOverride{{
					Name: "agent",
					ResourcesFromAllocatable: &nasv1alpha1.AllocatableShare{
						Requests: map[corev1.ResourceName]nasv1alpha1.Percentage{corev1.ResourceMemory: "1%"},
						Min:      map[corev1.ResourceName]nasv1alpha1.QuantityString{corev1.ResourceMemory: "64Mi"},
					},
				}},
			},
		}
	}
}

// podSummary is what a node's live pod runs: override, image and memory request.
type podSummary struct {
	Name, Override, Image, Memory string
}

func (s *scenario) podSummaries(g Gomega) map[string]podSummary {
	out := map[string]podSummary{}
	for node, pods := range s.livePodsByNode() {
		g.Expect(pods).To(HaveLen(1), "node %s has %d pods", node, len(pods))
		p := pods[0]
		mem := p.Spec.Containers[0].Resources.Requests[corev1.ResourceMemory]
		out[strings.TrimPrefix(node, s.label+"-")] = podSummary{
			Name: p.Name, Override: p.Labels[planner.OverrideLabel], Image: p.Spec.Containers[0].Image, Memory: mem.String(),
		}
	}
	return out
}

var _ = Describe("Node overrides", func() {
	It("runs each node's override, and an edit of one override replaces only the pods of its nodes", func() {
		s := newScenario()
		s.addNode("gpu-0", withLabels("gpu", "true"))
		s.addNode("gpu-1", withLabels("gpu", "true"))
		s.addNode("large")
		s.addNode("small")
		s.setAllocatable("large", "96", "512Gi")
		s.setAllocatable("small", "2", "2Gi")
		s.createSet("agent", gpuAndBySize(imageV2))
		k := s.kubelet()

		var before map[string]podSummary
		k.eventually(func(g Gomega) {
			before = s.podSummaries(g)
			g.Expect(before).To(HaveLen(4))
			g.Expect(before["gpu-0"]).To(MatchFields4("gpu", imageV2, "0"))
			g.Expect(before["gpu-1"]).To(MatchFields4("gpu", imageV2, "0"))
			// 1% of 512Gi is 5242.88Mi, rounded down; 1% of 2Gi is 20.48Mi, clamped to the 64Mi minimum.
			g.Expect(before["large"]).To(MatchFields4("by-size", imageV1, "5242Mi"))
			g.Expect(before["small"]).To(MatchFields4("by-size", imageV1, "64Mi"))
			g.Expect(s.getSet("agent").Status.UpdatedNumberScheduled).To(Equal(int32(4)))
		})
		gpuPod := s.livePodsByNode()[s.nodeName("gpu-0")][0]
		Expect(gpuPod.Spec.Containers[0].Env).To(ContainElement(corev1.EnvVar{Name: "GPU_METRICS", Value: "on"}))
		Expect(gpuPod.Labels).To(HaveKey(planner.PodSpecHashLabel))

		s.updateSet(func(set *nasv1alpha1.NodeAgentSet) { set.Spec.NodeOverrides[0].Containers[0].Image = imageV3 })
		k.eventually(func(g Gomega) {
			after := s.podSummaries(g)
			g.Expect(after).To(HaveLen(4))
			g.Expect(after["gpu-0"]).To(MatchFields4("gpu", imageV3, "0"))
			g.Expect(after["gpu-1"]).To(MatchFields4("gpu", imageV3, "0"))
			g.Expect(after["gpu-0"].Name).NotTo(Equal(before["gpu-0"].Name))
			// The by-size nodes keep their pods: same names, relabelled to the new revision.
			g.Expect(after["large"]).To(Equal(before["large"]))
			g.Expect(after["small"]).To(Equal(before["small"]))
			set := s.getSet("agent")
			g.Expect(set.Status.UpdatedNumberScheduled).To(Equal(int32(4)))
			g.Expect(set.Status.CurrentRevision).To(Equal(set.Status.UpdateRevision))
			for _, pods := range s.livePodsByNode() {
				g.Expect(pods[0].Labels).To(HaveKeyWithValue(nasv1alpha1.ControllerRevisionHashLabel, set.Status.UpdateRevision))
			}
		})
	})

	It("moves a relabelled node to its new override, and resizes a node whose allocatable changes", func() {
		s := newScenario()
		s.addNode("a")
		s.addNode("b")
		s.setAllocatable("a", "4", "16Gi")
		s.setAllocatable("b", "4", "16Gi")
		s.createSet("agent", gpuAndBySize(imageV2))
		k := s.kubelet()
		var before map[string]podSummary
		k.eventually(func(g Gomega) {
			before = s.podSummaries(g)
			g.Expect(before["a"]).To(MatchFields4("by-size", imageV1, "163Mi"))
			g.Expect(before["b"]).To(MatchFields4("by-size", imageV1, "163Mi"))
		})

		s.updateNode("a", func(n *corev1.Node) { n.Labels["gpu"] = "true" })
		s.setAllocatable("b", "4", "32Gi")
		k.eventually(func(g Gomega) {
			after := s.podSummaries(g)
			g.Expect(after["a"]).To(MatchFields4("gpu", imageV2, "0"))
			g.Expect(after["b"]).To(MatchFields4("by-size", imageV1, "327Mi"))
			g.Expect(s.getSet("agent").Status.UpdatedNumberScheduled).To(Equal(int32(2)))
		})
	})
})

// MatchFields4 matches a podSummary's override, image and memory request ("0" for none).
func MatchFields4(override, image, memory string) OmegaMatcher {
	return And(
		HaveField("Override", override),
		HaveField("Image", image),
		HaveField("Memory", memory),
	)
}
