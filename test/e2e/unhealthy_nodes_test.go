//go:build e2e

package e2e

import (
	"context"
	"slices"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
)

// How the specs below break a node on kwok. kwok's kubelets report every node Ready again within a
// second, so a node is declared dead the way an administrator does it: the
// node.kubernetes.io/out-of-service taint. Its "kubelet" stops acting on the agent pod: the pod is
// marked not Ready, and a finalizer keeps it terminating once deleted, as a dead kubelet never
// confirms a deletion.

// deadKubeletFinalizer holds a deleted pod on a dead node.
const deadKubeletFinalizer = "e2e.nodeagentset.io/dead-kubelet"

var outOfService = corev1.Taint{Key: corev1.TaintNodeOutOfService, Value: "nodeshutdown", Effect: corev1.TaintEffectNoExecute}

// tolerateOutOfService keeps the agent on an out-of-service node, as agents that tolerate every taint
// do (the suite's control-plane node must stay excluded).
func tolerateOutOfService(set *nasv1alpha1.NodeAgentSet) {
	set.Spec.Template.Spec.Tolerations = []corev1.Toleration{{Key: corev1.TaintNodeOutOfService, Operator: corev1.TolerationOpExists}}
}

func withUnhealthyPolicy(p nasv1alpha1.UnhealthyNodePolicy) setOpt {
	return func(set *nasv1alpha1.NodeAgentSet) {
		set.Spec.UpdateStrategy = nasv1alpha1.NodeAgentSetUpdateStrategy{Type: nasv1alpha1.RollingUpdateStrategyType,
			RollingUpdate: &nasv1alpha1.RollingUpdateNodeAgentSet{MaxUnavailable: ptr.To(intstr.FromInt32(1)), UnhealthyNodePolicy: p}}
	}
}

// updatePod applies mutate to the latest version of a pod (status too when status is true).
func updatePod(ctx context.Context, pod corev1.Pod, status bool, mutate func(*corev1.Pod)) {
	ExpectWithOffset(1, retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var cur corev1.Pod
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(&pod), &cur); err != nil {
			return client.IgnoreNotFound(err)
		}
		mutate(&cur)
		if status {
			return k8s.Status().Update(ctx, &cur)
		}
		return k8s.Update(ctx, &cur)
	})).To(Succeed())
}

func setPodReady(p *corev1.Pod, s corev1.ConditionStatus) {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == corev1.PodReady || p.Status.Conditions[i].Type == corev1.ContainersReady {
			p.Status.Conditions[i].Status, p.Status.Conditions[i].LastTransitionTime = s, metav1.Now()
		}
	}
}

// killNode declares the node dead (out of service) and stops its kubelet from acting on the set's pod;
// cleanups lift both.
func killNode(ctx context.Context, set *nasv1alpha1.NodeAgentSet, node string) corev1.Pod {
	pod := podOn(ctx, Default, set, node)
	updatePod(ctx, pod, false, func(p *corev1.Pod) { p.Finalizers = append(p.Finalizers, deadKubeletFinalizer) })
	DeferCleanup(func(ctx SpecContext) {
		updatePod(ctx, pod, false, func(p *corev1.Pod) {
			p.Finalizers = slices.DeleteFunc(p.Finalizers, func(f string) bool { return f == deadKubeletFinalizer })
		})
	})
	updatePod(ctx, pod, true, func(p *corev1.Pod) { setPodReady(p, corev1.ConditionFalse) })
	taintNode(ctx, node, outOfService)
	return pod
}

// unavailableReasons is the breakdown as reason -> nodes named.
func unavailableReasons(st nasv1alpha1.NodeAgentSetStatus) map[string][]string {
	out := map[string][]string{}
	sum := int32(0)
	for _, r := range st.UnavailableBreakdown {
		out[r.Reason] = r.Nodes
		sum += r.Count
	}
	ExpectWithOffset(1, sum).To(Equal(st.NumberUnavailable), "the breakdown sums to numberUnavailable")
	return out
}

var _ = Describe("Unhealthy nodes", func() {
	var ns string
	var nodes []string

	BeforeEach(func(ctx SpecContext) {
		ns = newNamespace(ctx)
		nodes = workerNodes(ctx)
	})

	It("with unhealthyNodePolicy Count stall a rollout, as upstream: the dead node's pod is replaced and never goes", func(ctx SpecContext) {
		set := createSet(ctx, ns, "count", tolerateOutOfService, withUnhealthyPolicy(nasv1alpha1.UnhealthyNodeCount))
		expectRunningOn(ctx, set, nodes)
		dead := nodes[0]
		pod := killNode(ctx, set, dead)

		rollToImage2(ctx, set)
		rev := updateRevision(ctx, set)
		Eventually(func(g Gomega) {
			var cur corev1.Pod
			g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(&pod), &cur)).To(Succeed())
			g.Expect(cur.DeletionTimestamp).NotTo(BeNil(), "the unavailable old pod is replaced outside the budget")
			g.Expect(unavailableReasons(getSet(ctx, g, set).Status)).To(HaveKeyWithValue("PodTerminating", []string{dead}))
		}).WithContext(ctx).Should(Succeed())
		Consistently(func(g Gomega) {
			g.Expect(hashes(live(setPods(ctx, g, set)))).NotTo(HaveKey(rev), "no healthy node is updated: the dead node holds the budget")
			g.Expect(getSet(ctx, g, set).Status.SkippedNodes).To(BeNil())
		}).WithContext(ctx).Should(Succeed())
	})

	It("with unhealthyNodePolicy Skip let a rollout complete around a dead node, listed as skipped, and update it once back", func(ctx SpecContext) {
		set := createSet(ctx, ns, "skip", tolerateOutOfService, withUnhealthyPolicy(nasv1alpha1.UnhealthyNodeSkip))
		expectRunningOn(ctx, set, nodes)
		dead := nodes[0]
		pod := killNode(ctx, set, dead)

		rollToImage2(ctx, set)
		rev := updateRevision(ctx, set)
		Eventually(func(g Gomega) {
			cur := getSet(ctx, g, set)
			pods := byNode(live(setPods(ctx, g, set)))
			for _, n := range without(nodes, dead) {
				g.Expect(pods[n]).To(HaveLen(1), "pods on %s", n)
				g.Expect(pods[n][0].Labels).To(HaveKeyWithValue(nasv1alpha1.ControllerRevisionHashLabel, rev), "pod on %s", n)
				g.Expect(isAvailable(&pods[n][0], 0, time.Now())).To(BeTrue(), "pod on %s", n)
			}
			g.Expect(pods[dead]).To(HaveLen(1))
			g.Expect(pods[dead][0].UID).To(Equal(pod.UID), "the dead node keeps its pod")
			g.Expect(cur.Status.SkippedNodes).To(Equal(&nasv1alpha1.SkippedNodes{Count: 1, Nodes: []string{dead}}))
			g.Expect(hasConditionReason(cur, nasv1alpha1.ConditionProgressing, nasv1alpha1.ReasonRolloutComplete)).To(BeTrue())
			g.Expect(unavailableReasons(cur.Status)).To(HaveKeyWithValue("PodNotReady", []string{dead}))
			g.Expect(cur.Status.TopUnavailableReason).To(Equal("PodNotReady"))
		}).WithContext(ctx).Should(Succeed())

		By("bringing " + dead + " back")
		untaintNode(ctx, dead, outOfService.Key)
		updatePod(ctx, pod, true, func(p *corev1.Pod) { setPodReady(p, corev1.ConditionTrue) })
		updatePod(ctx, pod, false, func(p *corev1.Pod) {
			p.Finalizers = slices.DeleteFunc(p.Finalizers, func(f string) bool { return f == deadKubeletFinalizer })
		})
		Eventually(func(g Gomega) {
			checkRunningOn(ctx, g, set, nodes)
			cur := getSet(ctx, g, set)
			g.Expect(hashes(live(setPods(ctx, g, set)))).To(Equal(map[string]int{rev: len(nodes)}))
			g.Expect(cur.Status.SkippedNodes).To(BeNil())
			g.Expect(cur.Status.UnavailableBreakdown).To(BeEmpty())
		}).WithContext(ctx).Should(Succeed())
	})

	It("leave a pod stopped by a node shutdown in place while the node is down, and replace it once when it is back", func(ctx SpecContext) {
		set := createSet(ctx, ns, "shutdown", tolerateOutOfService)
		expectRunningOn(ctx, set, nodes)
		node := nodes[1]
		pod := podOn(ctx, Default, set, node)

		By("shutting " + node + " down: out of service, its agent terminated by the kubelet")
		taintNode(ctx, node, outOfService)
		updatePod(ctx, pod, true, func(p *corev1.Pod) {
			p.Status.Phase, p.Status.Reason = corev1.PodFailed, "Terminated"
			p.Status.Message = "Pod was terminated in response to imminent node shutdown."
			setPodReady(p, corev1.ConditionFalse)
			p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: corev1.DisruptionTarget,
				Status: corev1.ConditionTrue, Reason: corev1.PodReasonTerminationByKubelet, LastTransitionTime: metav1.Now()})
		})
		seen := map[types.UID]bool{}
		record := func(g Gomega) {
			for _, p := range setPods(ctx, g, set) {
				seen[p.UID] = true
			}
		}
		Eventually(func(g Gomega) {
			g.Expect(unavailableReasons(getSet(ctx, g, set).Status)).To(HaveKeyWithValue("NodeShutdown", []string{node}))
		}).WithContext(ctx).Should(Succeed())
		Consistently(func(g Gomega) {
			record(g)
			g.Expect(podOn(ctx, g, set, node).UID).To(Equal(pod.UID))
		}).WithContext(ctx).Should(Succeed())
		Expect(seen).To(HaveLen(len(nodes)), "no pod created or deleted while the node is down")

		By("bringing " + node + " back")
		untaintNode(ctx, node, outOfService.Key)
		Eventually(func(g Gomega) {
			record(g)
			checkRunningOn(ctx, g, set, nodes)
		}).WithContext(ctx).Should(Succeed())
		Expect(seen).To(HaveLen(len(nodes)+1), "one new pod once the node is back")
	})

	It("break the unavailable nodes down by reason: node full, image pull, crash loop, not ready", func(ctx SpecContext) {
		set := createSet(ctx, ns, "breakdown", tolerateOutOfService)
		expectRunningOn(ctx, set, nodes)
		waiting := func(reason string) func(*corev1.Pod) {
			return func(p *corev1.Pod) {
				setPodReady(p, corev1.ConditionFalse)
				for i := range p.Status.ContainerStatuses {
					p.Status.ContainerStatuses[i].Ready = false
					p.Status.ContainerStatuses[i].State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason}}
				}
			}
		}
		// The kubelets' words, written on the pods as a kubelet would.
		updatePod(ctx, podOn(ctx, Default, set, nodes[0]), true, waiting("ImagePullBackOff"))
		updatePod(ctx, podOn(ctx, Default, set, nodes[1]), true, waiting("CrashLoopBackOff"))
		updatePod(ctx, podOn(ctx, Default, set, nodes[2]), true, func(p *corev1.Pod) { setPodReady(p, corev1.ConditionFalse) })

		By("a second set that no node has room for: the real scheduler says Insufficient cpu")
		full := createSet(ctx, ns, "full", func(s *nasv1alpha1.NodeAgentSet) {
			s.Spec.Template.Spec.NodeSelector = map[string]string{corev1.LabelHostname: nodes[3]}
			s.Spec.Template.Spec.Containers[0].Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100k")}
		})

		Eventually(func(g Gomega) {
			st := getSet(ctx, g, set).Status
			g.Expect(unavailableReasons(st)).To(Equal(map[string][]string{
				"ImagePull": {nodes[0]}, "CrashLoop": {nodes[1]}, "PodNotReady": {nodes[2]},
			}))
			g.Expect(st.NumberUnavailable).To(BeEquivalentTo(3))
			g.Expect(unavailableReasons(getSet(ctx, g, full).Status)).To(Equal(map[string][]string{"InsufficientResources": {nodes[3]}}))
			g.Expect(getSet(ctx, g, full).Status.TopUnavailableReason).To(Equal("InsufficientResources"))
		}).WithContext(ctx).Should(Succeed())
		out := env.kubectl(ctx, "", "get", "nas", "-n", ns, "full")
		Expect(out).To(ContainSubstring("InsufficientResources"), "the Unavailable-Reason column")
	})
})

// hasConditionReason: the set has a condition of the type with the reason.
func hasConditionReason(set *nasv1alpha1.NodeAgentSet, condType, reason string) bool {
	for _, c := range set.Status.Conditions {
		if c.Type == condType {
			return c.Reason == reason
		}
	}
	return false
}
