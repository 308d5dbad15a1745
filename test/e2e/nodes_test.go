//go:build e2e

package e2e

import (
	"context"
	"slices"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
)

// scaledNodeLabel marks the nodes `kwokctl scale node` creates.
const scaledNodeLabel = "kwok.x-k8s.io/kwokctl-scale"

func without(nodes []string, node string) []string {
	return slices.DeleteFunc(slices.Clone(nodes), func(n string) bool { return n == node })
}

// podOn returns the set's live pod on node.
func podOn(ctx context.Context, g Gomega, set *nasv1alpha1.NodeAgentSet, node string) corev1.Pod {
	onNode := byNode(live(setPods(ctx, g, set)))[node]
	g.ExpectWithOffset(1, onNode).To(HaveLen(1), "pods of %s on %s", set.Name, node)
	return onNode[0]
}

var _ = Describe("Nodes", func() {
	var ns string
	var nodes []string

	BeforeEach(func(ctx SpecContext) {
		ns = newNamespace(ctx)
		nodes = workerNodes(ctx)
	})

	It("that join get a pod, and their pod goes with them", func(ctx SpecContext) {
		set := createSet(ctx, ns, "scale")
		expectRunningOn(ctx, set, nodes)

		By("adding a node with kwokctl scale node")
		DeferCleanup(func(ctx SpecContext) { env.kwokctl(ctx, "scale", "node", "--replicas", "0") })
		env.kwokctl(ctx, "scale", "node", "--replicas", "1")
		var added string
		Eventually(func(g Gomega) {
			var list corev1.NodeList
			g.Expect(k8s.List(ctx, &list, client.HasLabels{scaledNodeLabel})).To(Succeed())
			g.Expect(list.Items).To(HaveLen(1))
			added = list.Items[0].Name
		}).WithContext(ctx).Should(Succeed())
		expectRunningOn(ctx, set, append(slices.Clone(nodes), added))

		By("removing node " + added + " (its pod goes through the pod garbage collector: up to a minute)")
		env.kwokctl(ctx, "scale", "node", "--replicas", "0")
		Eventually(func(g Gomega) { checkRunningOn(ctx, g, set, nodes) }).WithContext(ctx).WithTimeout(3 * time.Minute).Should(Succeed())
	})

	It("tainted NoSchedule keep their pod as misscheduled, get no new one, and untainted are back in scope", func(ctx SpecContext) {
		set := createSet(ctx, ns, "noschedule")
		expectRunningOn(ctx, set, nodes)
		node := nodes[0]
		kept := podOn(ctx, Default, set, node)

		By("tainting " + node + " NoSchedule")
		taint := corev1.Taint{Key: "e2e.nodeagentset.io/noschedule", Value: "x", Effect: corev1.TaintEffectNoSchedule}
		taintNode(ctx, node, taint)
		Eventually(func(g Gomega) {
			st := getSet(ctx, g, set).Status
			g.Expect(st.DesiredNumberScheduled).To(BeEquivalentTo(len(nodes) - 1))
			g.Expect(st.NumberMisscheduled).To(BeEquivalentTo(1))
		}).WithContext(ctx).Should(Succeed())
		Consistently(func(g Gomega) {
			g.Expect(podOn(ctx, g, set, node).UID).To(Equal(kept.UID))
		}).WithContext(ctx).Should(Succeed())
		other := createSet(ctx, ns, "after-taint")
		expectRunningOn(ctx, other, without(nodes, node))

		By("removing the taint")
		untaintNode(ctx, node, taint.Key)
		expectRunningOn(ctx, set, nodes)
		expectRunningOn(ctx, other, nodes)
		Expect(podOn(ctx, Default, set, node).UID).To(Equal(kept.UID), "the pod on %s was replaced", node)
	})

	It("tainted NoExecute lose the pods that do not tolerate it", func(ctx SpecContext) {
		set := createSet(ctx, ns, "noexecute")
		tolerant := createSet(ctx, ns, "tolerant", func(s *nasv1alpha1.NodeAgentSet) {
			s.Spec.Template.Spec.Tolerations = []corev1.Toleration{{Key: "e2e.nodeagentset.io/noexecute", Operator: corev1.TolerationOpExists}}
		})
		expectRunningOn(ctx, set, nodes)
		expectRunningOn(ctx, tolerant, nodes)
		node := nodes[1]
		kept := podOn(ctx, Default, tolerant, node)

		By("tainting " + node + " NoExecute")
		taint := corev1.Taint{Key: "e2e.nodeagentset.io/noexecute", Effect: corev1.TaintEffectNoExecute}
		taintNode(ctx, node, taint)
		expectRunningOn(ctx, set, without(nodes, node))
		Consistently(func(g Gomega) {
			checkRunningOn(ctx, g, set, without(nodes, node))
			g.Expect(podOn(ctx, g, tolerant, node).UID).To(Equal(kept.UID))
		}).WithContext(ctx).Should(Succeed())

		By("removing the taint")
		untaintNode(ctx, node, taint.Key)
		expectRunningOn(ctx, set, nodes)
	})

	It("cordoned keep their agent and get the agents of new sets", func(ctx SpecContext) {
		set := createSet(ctx, ns, "cordon")
		expectRunningOn(ctx, set, nodes)
		node := nodes[2]
		kept := podOn(ctx, Default, set, node)

		By("cordoning " + node)
		updateNode(ctx, node, func(n *corev1.Node) { n.Spec.Unschedulable = true })
		DeferCleanup(func(ctx SpecContext) { updateNode(ctx, node, func(n *corev1.Node) { n.Spec.Unschedulable = false }) })
		Eventually(func(g Gomega) {
			var n corev1.Node
			g.Expect(k8s.Get(ctx, client.ObjectKey{Name: node}, &n)).To(Succeed())
			g.Expect(n.Spec.Taints).To(ContainElement(HaveField("Key", corev1.TaintNodeUnschedulable)))
		}).WithContext(ctx).Should(Succeed())
		Consistently(func(g Gomega) {
			checkRunningOn(ctx, g, set, nodes)
			g.Expect(podOn(ctx, g, set, node).UID).To(Equal(kept.UID))
		}).WithContext(ctx).Should(Succeed())

		By("a new set runs on the cordoned node too (the automatic unschedulable toleration)")
		other := createSet(ctx, ns, "cordon-new")
		expectRunningOn(ctx, other, nodes)
	})
})
