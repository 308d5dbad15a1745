//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
)

// gatePoolLabel marks the nodes the readiness gate specs add; its value says which pool.
const gatePoolLabel = "e2e.nodeagentset.io/gate-pool"

func withGate(key string, mode nasv1alpha1.NodeReadinessGateMode, mutate ...func(*nasv1alpha1.NodeReadinessGate)) setOpt {
	return func(set *nasv1alpha1.NodeAgentSet) {
		g := &nasv1alpha1.NodeReadinessGate{TaintKey: key, Mode: mode}
		for _, m := range mutate {
			m(g)
		}
		set.Spec.NodeReadinessGate = g
	}
}

func continuous(grace int32, maxTainted intstr.IntOrString) func(*nasv1alpha1.NodeReadinessGate) {
	return func(g *nasv1alpha1.NodeReadinessGate) {
		g.GracePeriodSeconds = ptr.To(grace)
		g.MaxTaintedNodes = &maxTainted
	}
}

// addGatedNodes registers n kwok nodes named <prefix>-<i> in pool, carrying taint as a kubelet started
// with --register-with-taints would; they are deleted after the spec.
func addGatedNodes(ctx context.Context, prefix, pool string, n int, taint corev1.Taint) []string {
	names := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		names[i] = fmt.Sprintf("%s-%02d", prefix, i)
		wg.Go(func() {
			defer GinkgoRecover()
			node := &corev1.Node{
				ObjectMeta: metav1.ObjectMeta{Name: names[i],
					Annotations: map[string]string{"kwok.x-k8s.io/node": "fake"},
					Labels:      map[string]string{corev1.LabelHostname: names[i], "type": "kwok", gatePoolLabel: pool}},
				Spec: corev1.NodeSpec{Taints: []corev1.Taint{taint, {Key: corev1.TaintNodeNotReady, Effect: corev1.TaintEffectNoSchedule}}},
				Status: corev1.NodeStatus{
					Allocatable: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("16"), corev1.ResourceMemory: resource.MustParse("64Gi"),
						corev1.ResourcePods: resource.MustParse("110")},
					Capacity: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("16"), corev1.ResourceMemory: resource.MustParse("64Gi"),
						corev1.ResourcePods: resource.MustParse("110")},
				},
			}
			Expect(k8s.Create(ctx, node)).To(Succeed())
		})
	}
	wg.Wait()
	DeferCleanup(func(ctx SpecContext) {
		Expect(k8s.DeleteAllOf(ctx, &corev1.Node{}, client.MatchingLabels{gatePoolLabel: pool})).To(Succeed())
	})
	return names
}

// nodesWithTaint returns the nodes, among names, that carry a taint with key.
func nodesWithTaint(ctx context.Context, g Gomega, key string, names []string) []string {
	var out []string
	for _, name := range names {
		var n corev1.Node
		g.ExpectWithOffset(1, k8s.Get(ctx, client.ObjectKey{Name: name}, &n)).To(Succeed())
		if slices.ContainsFunc(n.Spec.Taints, func(t corev1.Taint) bool { return t.Key == key }) {
			out = append(out, name)
		}
	}
	return sorted(out)
}

// setAgentReady marks the set's live pods on nodes Ready or not, as a failing readiness probe would
// (kwok only makes Pending pods Ready, so a Running pod keeps what is written).
func setAgentReady(ctx context.Context, set *nasv1alpha1.NodeAgentSet, nodes []string, ready corev1.ConditionStatus) {
	GinkgoHelper()
	for _, node := range nodes {
		Eventually(func(g Gomega) {
			pod := podOn(ctx, g, set, node)
			g.Expect(pod.Status.Phase).To(Equal(corev1.PodRunning))
			patch := client.MergeFrom(pod.DeepCopy())
			for i := range pod.Status.Conditions {
				if c := &pod.Status.Conditions[i]; c.Type == corev1.PodReady || c.Type == corev1.ContainersReady {
					c.Status, c.LastTransitionTime = ready, metav1.Now()
				}
			}
			g.Expect(k8s.Status().Patch(ctx, &pod, patch)).To(Succeed())
		}).WithContext(ctx).Should(Succeed())
	}
}

var _ = Describe("The node readiness gate", func() {
	var ns string

	BeforeEach(func(ctx SpecContext) {
		ns = newNamespace(ctx)
	})

	It("keeps workloads off 50 joining nodes until each agent is available, and never touches untargeted nodes", func(ctx SpecContext) {
		const key = "readiness.nodeagentset.io/e2e-bootstrap"
		taint := corev1.Taint{Key: key, Effect: corev1.TaintEffectNoSchedule}
		By("registering 50 targeted and 5 untargeted nodes with the taint")
		targeted := addGatedNodes(ctx, "gate-a", "a", 50, taint)
		untargeted := addGatedNodes(ctx, "gate-b", "b", 5, taint)

		By("a Deployment without the toleration, one pod per node, stays Pending")
		replicas := int32(len(targeted) + len(untargeted))
		labels := map[string]string{"app": "workload"}
		deploy := &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "workload"},
			Spec: appsv1.DeploymentSpec{
				Replicas: &replicas,
				Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: labels},
					Spec: corev1.PodSpec{
						Containers: []corev1.Container{{Name: "app", Image: image1}},
						Affinity: &corev1.Affinity{
							NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
								NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{
									{Key: gatePoolLabel, Operator: corev1.NodeSelectorOpExists}}}}}},
							PodAntiAffinity: &corev1.PodAntiAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{{
								LabelSelector: &metav1.LabelSelector{MatchLabels: labels}, TopologyKey: corev1.LabelHostname}}},
						},
					},
				},
			},
		}
		Expect(k8s.Create(ctx, deploy)).To(Succeed())
		workloadNodes := func(g Gomega) []string {
			var pods corev1.PodList
			g.Expect(k8s.List(ctx, &pods, client.InNamespace(ns), client.MatchingLabels(labels))).To(Succeed())
			var out []string
			for _, p := range pods.Items {
				if p.Spec.NodeName != "" {
					out = append(out, p.Spec.NodeName)
				}
			}
			return sorted(out)
		}
		Consistently(func(g Gomega) { g.Expect(workloadNodes(g)).To(BeEmpty()) }).WithContext(ctx).Should(Succeed())

		By("the set gates the key on the targeted pool: each node's gate lifts once its agent is available")
		set := createSet(ctx, ns, "gate", withNodeSelector(gatePoolLabel, "a"), withGate(key, nasv1alpha1.BootstrapGateMode))
		Eventually(func(g Gomega) {
			g.Expect(nodesWithTaint(ctx, g, key, targeted)).To(BeEmpty())
			cur := getSet(ctx, g, set)
			g.Expect(cur.Status.NumberAvailable).To(BeEquivalentTo(len(targeted)))
			g.Expect(cur.Status.NumberGated).To(BeZero())
		}).WithContext(ctx).Should(Succeed())
		for _, node := range targeted {
			pod := podOn(ctx, Default, set, node)
			Expect(isReady(&pod)).To(BeTrue(), "the gate of %s lifted before its agent was available", node)
		}

		By("the workload lands on exactly the nodes whose gate lifted")
		Eventually(func(g Gomega) { g.Expect(workloadNodes(g)).To(Equal(sorted(targeted))) }).WithContext(ctx).Should(Succeed())
		Consistently(func(g Gomega) {
			g.Expect(workloadNodes(g)).To(Equal(sorted(targeted)))
			g.Expect(nodesWithTaint(ctx, g, key, untargeted)).To(Equal(sorted(untargeted)), "an untargeted node was touched")
		}).WithContext(ctx).Should(Succeed())
		cond := getSet(ctx, Default, set).Status.Conditions
		Expect(hasCondition(cond, nasv1alpha1.ConditionNodeReadinessGate)).To(BeTrue())
		Expect(getSet(ctx, Default, set).Finalizers).NotTo(ContainElement(nasv1alpha1.ReadinessGateFinalizer), "a Bootstrap set got the finalizer")
	})

	It("Continuous: puts the taint back on nodes whose agent is unavailable past the grace period, lifts it on recovery, releases on delete",
		func(ctx SpecContext) {
			const key = "readiness.nodeagentset.io/e2e-continuous"
			nodes := workerNodes(ctx)
			set := createSet(ctx, ns, "continuous", withGate(key, nasv1alpha1.ContinuousGateMode, continuous(2, intstr.FromInt32(3))))
			expectRunningOn(ctx, set, nodes)
			Eventually(func(g Gomega) {
				g.Expect(getSet(ctx, g, set).Finalizers).To(ContainElement(nasv1alpha1.ReadinessGateFinalizer))
			}).WithContext(ctx).Should(Succeed())

			By("three agents become unavailable: their nodes are tainted after the grace period")
			down := nodes[:3]
			start := time.Now()
			setAgentReady(ctx, set, down, corev1.ConditionFalse)
			Eventually(func(g Gomega) { g.Expect(nodesWithTaint(ctx, g, key, nodes)).To(Equal(sorted(down))) }).
				WithContext(ctx).WithPolling(fastPoll).Should(Succeed())
			// Condition times have a resolution of a second: the grace period may end up to a second early.
			Expect(time.Since(start)).To(BeNumerically(">=", time.Second), "tainted before the grace period")
			Eventually(func(g Gomega) { g.Expect(getSet(ctx, g, set).Status.NumberGated).To(BeEquivalentTo(3)) }).WithContext(ctx).Should(Succeed())

			By("they recover: the taint goes")
			setAgentReady(ctx, set, down, corev1.ConditionTrue)
			Eventually(func(g Gomega) { g.Expect(nodesWithTaint(ctx, g, key, nodes)).To(BeEmpty()) }).WithContext(ctx).Should(Succeed())

			By("unavailable again, then the set is deleted: every node it gated is released")
			setAgentReady(ctx, set, down, corev1.ConditionFalse)
			Eventually(func(g Gomega) { g.Expect(nodesWithTaint(ctx, g, key, nodes)).To(HaveLen(3)) }).WithContext(ctx).Should(Succeed())
			Expect(k8s.Delete(ctx, set)).To(Succeed())
			expectGone(ctx, set)
			Expect(nodesWithTaint(ctx, Default, key, nodes)).To(BeEmpty())
		})

	It("Continuous: a rollout of an image that never becomes ready taints at most maxTaintedNodes", func(ctx SpecContext) {
		const key = "readiness.nodeagentset.io/e2e-bad-image"
		nodes := workerNodes(ctx)
		set := createSet(ctx, ns, "bad-image", withGate(key, nasv1alpha1.ContinuousGateMode, continuous(1, intstr.FromInt32(2))),
			withStrategy(nasv1alpha1.NodeAgentSetUpdateStrategy{Type: nasv1alpha1.RollingUpdateStrategyType,
				RollingUpdate: &nasv1alpha1.RollingUpdateNodeAgentSet{MaxUnavailable: ptr.To(intstr.FromString("100%"))}}))
		expectRunningOn(ctx, set, nodes)

		By("rolling to a template the scheduler cannot place (kwok makes every bound pod Ready)")
		updateSet(ctx, set, func(s *nasv1alpha1.NodeAgentSet) {
			s.Spec.Template.Spec.Containers[0].Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1000")}
		})
		Eventually(func(g Gomega) {
			g.Expect(getSet(ctx, g, set).Status.NumberAvailable).To(BeZero())
			g.Expect(nodesWithTaint(ctx, g, key, nodes)).To(HaveLen(2))
		}).WithContext(ctx).WithPolling(fastPoll).Should(Succeed())
		Consistently(func(g Gomega) { g.Expect(nodesWithTaint(ctx, g, key, nodes)).To(HaveLen(2)) }).WithContext(ctx).Should(Succeed())

		Expect(k8s.Delete(ctx, set)).To(Succeed())
		expectGone(ctx, set)
		Expect(nodesWithTaint(ctx, Default, key, nodes)).To(BeEmpty())
	})

	It("refuses a key outside the allowed prefixes: no node is touched, and the set says why", func(ctx SpecContext) {
		const key = "node.example.com/not-ours"
		nodes := workerNodes(ctx)
		taintNode(ctx, nodes[0], corev1.Taint{Key: key, Effect: corev1.TaintEffectNoSchedule})
		set := createSet(ctx, ns, "refused", withGate(key, nasv1alpha1.BootstrapGateMode))
		expectRunningOn(ctx, set, nodes)
		Eventually(func(g Gomega) {
			conds := getSet(ctx, g, set).Status.Conditions
			g.Expect(conds).To(ContainElement(And(HaveField("Type", nasv1alpha1.ConditionNodeReadinessGate),
				HaveField("Status", metav1.ConditionFalse), HaveField("Reason", nasv1alpha1.ReasonGateKeyNotAllowed))))
		}).WithContext(ctx).Should(Succeed())
		Consistently(func(g Gomega) { g.Expect(nodesWithTaint(ctx, g, key, nodes)).To(Equal([]string{nodes[0]})) }).WithContext(ctx).Should(Succeed())
	})
})
