package plugin

import (
	"encoding/json"
	"maps"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
	"github.com/nodeagentset/nodeagentset/internal/planner"
)

// addOverridesRevision records the set's template and overrides as a ControllerRevision, as the
// controller does for a set with nodeOverrides, and returns its hash.
func (s *scenario) addOverridesRevision(set *nasv1alpha1.NodeAgentSet, number int64) string {
	GinkgoHelper()
	tmpl, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&set.Spec.Template)
	Expect(err).NotTo(HaveOccurred())
	tmpl["$patch"] = "replace"
	raw, err := json.Marshal(set.Spec.NodeOverrides)
	Expect(err).NotTo(HaveOccurred())
	var overrides []any
	Expect(json.Unmarshal(raw, &overrides)).To(Succeed())
	data, err := json.Marshal(map[string]any{"spec": map[string]any{"template": tmpl, "nodeOverrides": overrides}})
	Expect(err).NotTo(HaveOccurred())
	hash := planner.RevisionHash(set)
	labels := maps.Clone(set.Spec.Template.Labels)
	labels[nasv1alpha1.ControllerRevisionHashLabel] = hash
	Expect(k8s.Create(ctx, &appsv1.ControllerRevision{
		ObjectMeta: metav1.ObjectMeta{
			Name: set.Name + "-" + hash, Namespace: set.Namespace, Labels: labels,
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(set, nasv1alpha1.GroupVersion.WithKind("NodeAgentSet"))},
		},
		Data:     runtime.RawExtension{Raw: data},
		Revision: number,
	})).To(Succeed())
	return hash
}

func withMemory(memory string) nodeOpt {
	return func(n *corev1.Node) {
		n.Status.Allocatable = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse(memory)}
	}
}

func gpuAndBySize(set *nasv1alpha1.NodeAgentSet) {
	set.Spec.NodeOverrides = []nasv1alpha1.NodeOverride{
		{
			Name:         "gpu",
			NodeSelector: metav1.LabelSelector{MatchLabels: map[string]string{"gpu": "true"}},
			Containers:   []nasv1alpha1.ContainerOverride{{Name: "agent", Image: "example.com/agent:2-cuda"}},
		},
		{
			Name: "by-size",
			Containers: []nasv1alpha1.ContainerOverride{{Name: "agent", ResourcesFromAllocatable: &nasv1alpha1.AllocatableShare{
				Requests: map[corev1.ResourceName]nasv1alpha1.Percentage{corev1.ResourceMemory: "1%"},
			}}},
		},
	}
}

var _ = Describe("kubectl nas with node overrides", Serial, func() {
	var s *scenario
	BeforeEach(func() {
		s = newScenario()
		set := s.createSet("agent", "example.com/agent:1")
		s.addRevision(set, 1, "")
		set = s.updateSet("agent", func(set *nasv1alpha1.NodeAgentSet) {
			set.Spec.Template.Spec.Containers[0].Image = "example.com/agent:2"
			gpuAndBySize(set)
		})
		hash := s.addOverridesRevision(set, 2)
		s.addNode("gpu-1", withLabels("gpu", "true"), withMemory("64Gi"))
		s.addNode("worker-1", withMemory("16Gi"))
		for _, name := range []string{"gpu-1", "worker-1"} {
			node := &corev1.Node{}
			Expect(k8s.Get(ctx, client.ObjectKey{Name: name}, node)).To(Succeed())
			pod := planner.NewNodePod(set, name, hash, planner.RenderForNode(set, node))
			pod.Spec.NodeName = name
			Expect(k8s.Create(ctx, pod)).To(Succeed())
		}
	})

	It("nodes shows each node's override and the requests it gives", func() {
		r := s.run("nodes", "agent")
		Expect(r.code).To(Equal(0), r.err)
		rows := lines(r.out)
		Expect(columns(rows[0])[:4]).To(Equal([]string{"NODE", "ELIGIBLE", "OVERRIDE", "REQUESTS"}))
		Expect(columns(rows[1])[:4]).To(Equal([]string{"gpu-1", "yes", "gpu", "<none>"}))
		// 1% of 16Gi is 163.84Mi, rounded down to whole Mi.
		Expect(columns(rows[2])[:4]).To(Equal([]string{"worker-1", "yes", "by-size", "agent: memory=163Mi"}))
	})

	It("why says which override applies and why the earlier ones did not match", func() {
		r := s.run("why", "agent", "worker-1")
		Expect(r.code).To(Equal(0), r.err)
		Expect(lines(r.out)).To(ContainElements(
			HavePrefix("Node override by-size applies: the first whose nodeSelector matches the node"),
			"  Override gpu does not match: label gpu=true is not on the node.",
			"  Requests: agent: memory=163Mi.",
		))
		r = s.run("why", "agent", "gpu-1")
		Expect(lines(r.out)).To(ContainElement(HavePrefix("Node override gpu applies")))
	})

	It("rollout undo restores the template and the overrides together", func() {
		r := s.run("rollout", "undo", "agent")
		Expect(r).To(Equal(result{out: "nodeagentset.apps.nodeagentset.io/agent rolled back\n"}))
		set := s.getSet("agent")
		Expect(set.Spec.Template.Spec.Containers[0].Image).To(Equal("example.com/agent:1"))
		Expect(set.Spec.NodeOverrides).To(BeEmpty())

		r = s.run("rollout", "undo", "agent", "--to-revision", "2")
		Expect(r).To(Equal(result{out: "nodeagentset.apps.nodeagentset.io/agent rolled back\n"}))
		set = s.getSet("agent")
		Expect(set.Spec.Template.Spec.Containers[0].Image).To(Equal("example.com/agent:2"))
		Expect(set.Spec.NodeOverrides).To(HaveLen(2))
		Expect(set.Spec.NodeOverrides[0].Containers[0].Image).To(Equal("example.com/agent:2-cuda"))

		r = s.run("rollout", "undo", "agent", "--to-revision", "2")
		Expect(r.out).To(ContainSubstring("skipped rollback (current template already matches revision 2)"))
	})
})
