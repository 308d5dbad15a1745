package controller

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
)

// nodeDown makes a node NotReady since a minute ago (past the unhealthy grace period), as a node
// whose kubelet stopped reporting.
func (s *scenario) nodeDown(name string) {
	s.updateNodeStatus(name, corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionUnknown,
		Reason: "NodeStatusUnknown", LastTransitionTime: metav1.NewTime(time.Now().Add(-time.Minute))})
}

func (s *scenario) nodeUp(name string) {
	s.updateNodeStatus(name, corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Now()})
}

// setAgentPodStatus rewrites the status of the node's only live agent pod.
func (s *scenario) setAgentPodStatus(node string, mutate func(*corev1.PodStatus)) {
	GinkgoHelper()
	Eventually(func(g Gomega) {
		pod := s.agentPods(g)[node]
		mutate(&pod.Status)
		g.Expect(k8s.Status().Update(ctx, &pod)).To(Succeed())
	}, timeout, interval).Should(Succeed())
}

func withSkip(set *nasv1alpha1.NodeAgentSet) {
	set.Spec.UpdateStrategy.RollingUpdate = &nasv1alpha1.RollingUpdateNodeAgentSet{UnhealthyNodePolicy: nasv1alpha1.UnhealthyNodeSkip}
}

var _ = Describe("Unhealthy nodes", func() {
	It("with unhealthyNodePolicy Skip completes a rollout around a NotReady node, lists it as skipped and in the breakdown, and updates it once back", func() {
		s := newScenario()
		k := s.rolloutKubelet()
		s.addNodes(3)
		s.createSet("agent", withSkip)
		before := s.rolledOut(k, shortNodeNames(3), imageV1)

		s.nodeDown("node-2")
		s.setAgentPodStatus("node-2", func(st *corev1.PodStatus) {
			st.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionFalse, LastTransitionTime: metav1.Now()}}
		})
		k.eventually(func(g Gomega) {
			st := s.getSet("agent").Status
			g.Expect(st.UnavailableBreakdown).To(Equal([]nasv1alpha1.UnavailableReason{{Reason: "NodeNotReady", Count: 1, Nodes: []string{s.nodeName("node-2")}}}))
			g.Expect(st.TopUnavailableReason).To(Equal("NodeNotReady"))
		})

		hash2 := s.changeTemplate(k, setImage(imageV2))
		k.eventually(func(g Gomega) {
			set := s.getSet("agent")
			pods := viewPods(s.agentPods(g))
			g.Expect(pods["node-2"].UID).To(Equal(before["node-2"].UID), "the skipped node keeps its pod")
			for _, n := range []string{"node-0", "node-1"} {
				g.Expect(pods[n]).To(And(HaveField("Hash", hash2), HaveField("Ready", BeTrue())), "node %s", n)
			}
			g.Expect(progressingOf(g, set).Reason).To(Equal(nasv1alpha1.ReasonRolloutComplete))
			g.Expect(set.Status.SkippedNodes).To(Equal(&nasv1alpha1.SkippedNodes{Count: 1, Nodes: []string{s.nodeName("node-2")}}))
		})

		s.nodeUp("node-2")
		s.setAgentPodStatus("node-2", func(st *corev1.PodStatus) {
			st.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Now()}}
		})
		s.rolledOut(k, shortNodeNames(3), imageV2)
		set := s.getSet("agent")
		Expect(set.Status.SkippedNodes).To(BeNil())
		Expect(set.Status.UnavailableBreakdown).To(BeEmpty())
		Expect(set.Status.TopUnavailableReason).To(BeEmpty())
	})

	It("leaves a pod the kubelet terminated for a node shutdown in place while the node is down, and replaces it once when it is back", func() {
		s := newScenario()
		k := s.rolloutKubelet()
		s.addNodes(2)
		s.createSet("agent")
		before := s.rolledOut(k, shortNodeNames(2), imageV1)

		s.nodeDown("node-1")
		s.setAgentPodStatus("node-1", func(st *corev1.PodStatus) {
			st.Phase, st.Reason, st.Message = corev1.PodFailed, "Terminated", "Pod was terminated in response to imminent node shutdown."
			st.Conditions = []corev1.PodCondition{
				{Type: corev1.PodReady, Status: corev1.ConditionFalse, LastTransitionTime: metav1.Now()},
				{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue, Reason: corev1.PodReasonTerminationByKubelet, LastTransitionTime: metav1.Now()},
			}
		})
		seen := map[types.UID]bool{}
		k.consistently(3*time.Second, func(g Gomega) {
			for _, pod := range s.pods() {
				seen[pod.UID] = true
			}
			pods := viewPods(s.agentPods(g))
			g.Expect(pods["node-1"].UID).To(Equal(before["node-1"].UID))
		})
		Expect(seen).To(HaveLen(2), "no pod was created while the node was down")
		st := s.getSet("agent").Status
		Expect(st.UnavailableBreakdown).To(Equal([]nasv1alpha1.UnavailableReason{{Reason: "NodeShutdown", Count: 1, Nodes: []string{s.nodeName("node-1")}}}))

		s.nodeUp("node-1")
		k.eventually(func(g Gomega) {
			pods := viewPods(s.agentPods(g))
			g.Expect(pods["node-1"].UID).NotTo(Equal(before["node-1"].UID))
			g.Expect(pods["node-1"].Ready).To(BeTrue())
			for _, pod := range s.pods() {
				seen[pod.UID] = true
			}
		})
		Expect(seen).To(HaveLen(3), "one new pod once the node is back")
	})
})
