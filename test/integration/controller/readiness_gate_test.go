package controller

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
	"github.com/nodeagentset/nodeagentset/internal/controller/nodeagentset"
)

// gatedNodes returns the (short) names of the scenario's nodes that carry a taint with key, sorted.
func (s *scenario) gatedNodes(g Gomega, key string) []string {
	var nodes corev1.NodeList
	g.Expect(k8s.List(ctx, &nodes, client.MatchingLabels{"scenario": s.label})).To(Succeed())
	out := []string{}
	for _, n := range nodes.Items {
		for _, t := range n.Spec.Taints {
			if t.Key == key {
				out = append(out, strings.TrimPrefix(n.Name, s.label+"-"))
				break
			}
		}
	}
	sort.Strings(out)
	return out
}

func gate(key string, mode nasv1alpha1.NodeReadinessGateMode, mutate ...func(*nasv1alpha1.NodeReadinessGate)) func(*nasv1alpha1.NodeAgentSet) {
	return func(set *nasv1alpha1.NodeAgentSet) {
		g := &nasv1alpha1.NodeReadinessGate{TaintKey: key, Mode: mode}
		for _, m := range mutate {
			m(g)
		}
		set.Spec.NodeReadinessGate = g
	}
}

var _ = Describe("The node readiness gate", func() {
	const key = "readiness.nodeagentset.io/agent"

	It("lifts a registered taint once the node's agent is available, and only on the nodes the set targets", func() {
		s := newScenario()
		for i := range 3 {
			s.addNode(fmt.Sprintf("node-%d", i), withTaint(key, "", corev1.TaintEffectNoExecute), withTaint("other", "x", corev1.TaintEffectPreferNoSchedule))
		}
		s.addNode("other-team", withLabels("team", "b"), withTaint(key, "", corev1.TaintEffectNoExecute))
		s.createSet("agent", gate(key, ""), func(set *nasv1alpha1.NodeAgentSet) {
			set.Spec.Template.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
				RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
					MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "team", Operator: corev1.NodeSelectorOpDoesNotExist}},
				}}}}}
		})
		k := s.kubelet()
		k.notReady["node-2"] = true
		k.eventually(func(g Gomega) {
			g.Expect(s.gatedNodes(g, key)).To(Equal([]string{"node-2", "other-team"}))
			set := s.getSet("agent")
			g.Expect(set.Status.NumberGated).To(BeEquivalentTo(1))
			c := condition(set, nasv1alpha1.ConditionNodeReadinessGate)
			g.Expect(c).NotTo(BeNil())
			g.Expect(c.Reason).To(Equal(nasv1alpha1.ReasonGateActive))
		})
		node := &corev1.Node{}
		Expect(k8s.Get(ctx, client.ObjectKey{Name: s.nodeName("node-0")}, node)).To(Succeed())
		Expect(node.Spec.Taints).To(ConsistOf(corev1.Taint{Key: "other", Value: "x", Effect: corev1.TaintEffectPreferNoSchedule}))
		Expect(s.getSet("agent").Finalizers).To(BeEmpty(), "a Bootstrap set got the finalizer")
	})

	It("lifts the gate on a controller's first pass when the agent became available while it was down", func() {
		// The suite's controller refuses the key's prefix: it runs the pods but never patches a node,
		// as a controller killed between a pod becoming available and the patch.
		const downKey = "restart.example.com/agent"
		s := newScenario()
		s.addNodes(2)
		s.updateNode("node-0", func(n *corev1.Node) {
			n.Spec.Taints = append(n.Spec.Taints, corev1.Taint{Key: downKey, Effect: corev1.TaintEffectNoSchedule})
		})
		s.updateNode("node-1", func(n *corev1.Node) {
			n.Spec.Taints = append(n.Spec.Taints, corev1.Taint{Key: downKey, Effect: corev1.TaintEffectNoSchedule})
		})
		s.createSet("agent", gate(downKey, ""))
		k := s.kubelet()
		k.eventually(func(g Gomega) {
			set := s.getSet("agent")
			g.Expect(set.Status.NumberAvailable).To(BeEquivalentTo(2))
			c := condition(set, nasv1alpha1.ConditionNodeReadinessGate)
			g.Expect(c).NotTo(BeNil())
			g.Expect(c.Reason).To(Equal(nasv1alpha1.ReasonGateKeyNotAllowed))
		})
		Expect(s.gatedNodes(Default, downKey)).To(Equal([]string{"node-0", "node-1"}), "a refused key touched a node")

		// The controller that comes up allows the prefix; nothing else happens to the world.
		restartCtx, stop := context.WithCancel(ctx)
		defer stop()
		config := nodeagentset.Config{ReadinessGateTaintPrefixes: []string{"restart.example.com/"}, SkipControllerNameValidation: true}
		mgr, err := ctrl.NewManager(cfg, nodeagentset.ManagerOptions(config))
		Expect(err).NotTo(HaveOccurred())
		_, err = nodeagentset.SetupWithManager(restartCtx, mgr, config)
		Expect(err).NotTo(HaveOccurred())
		go func() {
			defer GinkgoRecover()
			Expect(mgr.Start(restartCtx)).To(Succeed())
		}()
		Eventually(func(g Gomega) { g.Expect(s.gatedNodes(g, downKey)).To(BeEmpty()) }, timeout, interval).Should(Succeed())
	})

	It("Continuous: puts the taint back after the grace period, lifts it on recovery, within maxTaintedNodes, and releases the nodes on delete", func() {
		s := newScenario()
		s.addNodes(4)
		s.createSet("agent", gate(key, nasv1alpha1.ContinuousGateMode, func(g *nasv1alpha1.NodeReadinessGate) {
			g.GracePeriodSeconds = ptr.To[int32](1)
			g.MaxTaintedNodes = ptr.To(intstr.FromInt32(2))
		}))
		k := s.kubelet()
		k.eventually(func(g Gomega) {
			set := s.getSet("agent")
			g.Expect(set.Status.NumberAvailable).To(BeEquivalentTo(4))
			g.Expect(set.Finalizers).To(ContainElement(nasv1alpha1.ReadinessGateFinalizer))
		})
		Expect(s.gatedNodes(Default, key)).To(BeEmpty())

		// Three agents turn unavailable: two nodes get the taint back, the third waits for the budget.
		unready := map[string]bool{"node-0": true, "node-1": true, "node-2": true}
		setReady := func(ready corev1.ConditionStatus) {
			for _, p := range s.pods() {
				if unready[strings.TrimPrefix(p.Spec.NodeName, s.label+"-")] {
					p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: ready, LastTransitionTime: metav1.Now()}}
					Expect(k8s.Status().Update(ctx, &p)).To(Succeed())
				}
			}
		}
		setReady(corev1.ConditionFalse)
		Eventually(func(g Gomega) { g.Expect(s.gatedNodes(g, key)).To(Equal([]string{"node-0", "node-1"})) }, timeout, interval).Should(Succeed())
		Consistently(func(g Gomega) { g.Expect(s.gatedNodes(g, key)).To(HaveLen(2)) }, 2*time.Second, interval).Should(Succeed())
		Expect(s.getSet("agent").Status.NumberGated).To(BeEquivalentTo(2))

		setReady(corev1.ConditionTrue)
		Eventually(func(g Gomega) { g.Expect(s.gatedNodes(g, key)).To(BeEmpty()) }, timeout, interval).Should(Succeed())

		// Unavailable again, then the set is deleted: the nodes it tainted are released, then it goes.
		setReady(corev1.ConditionFalse)
		Eventually(func(g Gomega) { g.Expect(s.gatedNodes(g, key)).To(HaveLen(2)) }, timeout, interval).Should(Succeed())
		Expect(k8s.Delete(ctx, s.getSet("agent"))).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(s.gatedNodes(g, key)).To(BeEmpty())
			err := k8s.Get(ctx, client.ObjectKey{Namespace: s.ns, Name: "agent"}, &nasv1alpha1.NodeAgentSet{})
			g.Expect(client.IgnoreNotFound(err)).To(Succeed())
			g.Expect(err).To(HaveOccurred(), "the set is still there")
		}, timeout, interval).Should(Succeed())
	})

	It("refuses a key an older set gates, and touches no node for it", func() {
		s := newScenario()
		s.addNode("node-0", withTaint(key+"-shared", "", corev1.TaintEffectNoSchedule))
		s.createSet("older", gate(key+"-shared", ""), func(set *nasv1alpha1.NodeAgentSet) {
			set.Spec.Template.Spec.NodeSelector = map[string]string{"nothing": "matches"}
		})
		// creationTimestamp has a resolution of one second.
		time.Sleep(1100 * time.Millisecond)
		s.createSet("agent", gate(key+"-shared", ""))
		k := s.kubelet()
		k.eventually(func(g Gomega) {
			set := s.getSet("agent")
			g.Expect(set.Status.NumberAvailable).To(BeEquivalentTo(1))
			c := condition(set, nasv1alpha1.ConditionNodeReadinessGate)
			g.Expect(c).NotTo(BeNil())
			g.Expect(c.Reason).To(Equal(nasv1alpha1.ReasonGateKeyConflict))
			g.Expect(c.Message).To(ContainSubstring(s.ns + "/older"))
		})
		k.consistently(time.Second, func(g Gomega) { g.Expect(s.gatedNodes(g, key+"-shared")).To(Equal([]string{"node-0"})) })

		// The older set goes: the key is this set's now.
		Expect(k8s.Delete(ctx, s.getSet("older"))).To(Succeed())
		k.eventually(func(g Gomega) { g.Expect(s.gatedNodes(g, key+"-shared")).To(BeEmpty()) })
	})
})
