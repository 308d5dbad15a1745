package controller

import (
	"fmt"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
	"github.com/nodeagentset/nodeagentset/internal/planner"
)

// withCanary gives the set a one-node canary watched for two seconds.
func withCanary(autoPromote bool, onFailure nasv1alpha1.CanaryFailurePolicy) func(*nasv1alpha1.NodeAgentSet) {
	return func(set *nasv1alpha1.NodeAgentSet) {
		set.Spec.UpdateStrategy = nasv1alpha1.NodeAgentSetUpdateStrategy{
			Type: nasv1alpha1.RollingUpdateStrategyType,
			RollingUpdate: &nasv1alpha1.RollingUpdateNodeAgentSet{Canary: &nasv1alpha1.CanaryStrategy{
				Duration: &metav1.Duration{Duration: 2 * time.Second}, AutoPromote: ptr.To(autoPromote), OnFailure: onFailure,
			}},
		}
	}
}

// hashesByNode maps every node (short name) to the revision hash of its live pods.
func (s *scenario) hashesByNode(g Gomega) map[string]string {
	out := map[string]string{}
	for node, pod := range s.agentPods(g) {
		out[node] = pod.Labels[nasv1alpha1.ControllerRevisionHashLabel]
	}
	return out
}

// canaryInvariant fails the poll when a node outside the canary runs the revision under test.
func (s *scenario) canaryInvariant(g Gomega, hash string, canary ...string) {
	allowed := map[string]bool{}
	for _, n := range canary {
		allowed[n] = true
	}
	for node, pods := range s.livePodsByNode() {
		for _, p := range pods {
			if p.Labels[nasv1alpha1.ControllerRevisionHashLabel] == hash {
				g.Expect(allowed).To(HaveKey(strings.TrimPrefix(node, s.label+"-")), "node %s runs the revision under test", node)
			}
		}
	}
}

// decide writes a person's decision, as kubectl nas rollout promote|abort|retry does.
func (s *scenario) decide(action, hash string) {
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, nasv1alpha1.CanaryDecisionAnnotation,
		planner.CanaryDecision(action, hash, time.Now()))
	set := &nasv1alpha1.NodeAgentSet{ObjectMeta: metav1.ObjectMeta{Namespace: s.ns, Name: "agent"}}
	Expect(k8s.Patch(ctx, set, client.RawPatch(types.MergePatchType, []byte(patch)), client.FieldOwner("kubectl-nas-rollout"))).To(Succeed())
}

var _ = Describe("A canary rollout", func() {
	var s *scenario
	BeforeEach(func() {
		s = newScenario()
		DeferCleanup(s.cleanup)
		s.addNodes(3)
	})

	It("updates only the canary node, waits for promote, then rolls out; the verdict is in status only", func() {
		s.createSet("agent", withCanary(false, nasv1alpha1.CanaryFailurePause))
		k := s.rolloutKubelet()
		k.eventually(func(g Gomega) {
			runningEverywhere(g, viewPods(s.agentPods(g)), shortNodeNames(3), s.getSet("agent").Status.UpdateRevision, imageV1)
		})
		g1 := s.getSet("agent")
		Expect(g1.Status.Canary).To(HaveField("Phase", nasv1alpha1.CanarySucceeded), "a new set has nothing to compare against")
		stable := g1.Status.UpdateRevision

		s.updateSet(func(set *nasv1alpha1.NodeAgentSet) { set.Spec.Template.Spec.Containers[0].Image = imageV2 })
		var hash string
		k.eventually(func(g Gomega) {
			set := s.getSet("agent")
			g.Expect(set.Status.Canary).NotTo(BeNil())
			g.Expect(set.Status.Canary.Phase).To(Equal(nasv1alpha1.CanaryWaitingForPromotion))
			hash = set.Status.Canary.Revision
			g.Expect(hash).NotTo(Equal(stable))
			g.Expect(set.Status.Canary).To(And(HaveField("StableRevision", stable), HaveField("Nodes", []string{s.nodeName("node-0")}),
				HaveField("WatchStartedAt", Not(BeNil()))))
			g.Expect(condition(set, nasv1alpha1.ConditionCanary)).To(HaveField("Reason", nasv1alpha1.ReasonCanaryWaitingForPromotion))
			g.Expect(condition(set, nasv1alpha1.ConditionProgressing)).To(HaveField("Reason", nasv1alpha1.ReasonCanaryInProgress))
			s.canaryInvariant(g, hash, "node-0")
		})
		k.consistently(2*time.Second, func(g Gomega) {
			s.canaryInvariant(g, hash, "node-0")
			g.Expect(s.hashesByNode(g)).To(Equal(map[string]string{"node-0": hash, "node-1": stable, "node-2": stable}))
		})
		Expect(s.getSet("agent").Spec.UpdateStrategy.RollingUpdate.Canary.AutoPromote).To(Equal(ptr.To(false)), "the spec is never written")

		// A decision for another revision is ignored.
		s.decide(planner.CanaryDecisionPromote, stable)
		k.consistently(time.Second, func(g Gomega) {
			g.Expect(s.getSet("agent").Status.Canary.Phase).To(Equal(nasv1alpha1.CanaryWaitingForPromotion))
		})
		s.decide(planner.CanaryDecisionPromote, hash)
		k.eventually(func(g Gomega) {
			set := s.getSet("agent")
			g.Expect(set.Status.Canary.Phase).To(Equal(nasv1alpha1.CanarySucceeded))
			runningEverywhere(g, viewPods(s.agentPods(g)), shortNodeNames(3), hash, imageV2)
			g.Expect(condition(set, nasv1alpha1.ConditionProgressing)).To(HaveField("Reason", nasv1alpha1.ReasonRolloutComplete))
		})
	})

	It("fails on restarts, goes no further, and with Rollback gives the canary node the stable revision back", func() {
		s.createSet("agent", withCanary(true, nasv1alpha1.CanaryFailureRollback))
		k := s.rolloutKubelet()
		k.eventually(func(g Gomega) {
			runningEverywhere(g, viewPods(s.agentPods(g)), shortNodeNames(3), s.getSet("agent").Status.UpdateRevision, imageV1)
		})
		stable := s.getSet("agent").Status.UpdateRevision
		s.updateSet(func(set *nasv1alpha1.NodeAgentSet) { set.Spec.Template.Spec.Containers[0].Image = imageV2 })
		var hash string
		k.eventually(func(g Gomega) {
			st := s.getSet("agent").Status.Canary
			g.Expect(st).To(HaveField("Phase", nasv1alpha1.CanaryWatching))
			hash = st.Revision
		})
		// The canary pod's container restarts, as a kubelet reports it.
		Eventually(func(g Gomega) {
			pod := s.agentPods(g)["node-0"]
			g.Expect(pod.Labels[nasv1alpha1.ControllerRevisionHashLabel]).To(Equal(hash))
			pod.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "agent", Image: imageV2, Ready: true, RestartCount: 1,
				State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}}
			g.Expect(k8s.Status().Update(ctx, &pod)).To(Succeed())
		}, timeout, interval).Should(Succeed())
		k.eventually(func(g Gomega) {
			set := s.getSet("agent")
			g.Expect(set.Status.Canary).To(And(HaveField("Phase", nasv1alpha1.CanaryFailed),
				HaveField("Reason", nasv1alpha1.CanaryTooManyRestarts), HaveField("Restarts", int32(1))))
			g.Expect(condition(set, nasv1alpha1.ConditionProgressing)).To(And(HaveField("Status", metav1.ConditionFalse),
				HaveField("Reason", nasv1alpha1.ReasonCanaryFailed)))
			g.Expect(condition(set, nasv1alpha1.ConditionCanary)).To(HaveField("Reason", nasv1alpha1.ReasonCanaryFailed))
			s.canaryInvariant(g, hash, "node-0")
			runningEverywhere(g, viewPods(s.agentPods(g)), shortNodeNames(3), stable, imageV1)
		})
		k.consistently(2*time.Second, func(g Gomega) {
			runningEverywhere(g, viewPods(s.agentPods(g)), shortNodeNames(3), stable, imageV1)
			g.Expect(s.getSet("agent").Status.Canary.Phase).To(Equal(nasv1alpha1.CanaryFailed))
		})

		// Retry: the canary node gets the revision under test again and is watched from zero.
		s.decide(planner.CanaryDecisionRetry, hash)
		k.eventually(func(g Gomega) {
			set := s.getSet("agent")
			g.Expect(set.Status.Canary.Phase).To(Equal(nasv1alpha1.CanarySucceeded))
			runningEverywhere(g, viewPods(s.agentPods(g)), shortNodeNames(3), hash, imageV2)
		})
	})

	It("holds a node that joins during the canary at the stable revision, built with that revision's override", func() {
		const gpuImage = "registry.k8s.io/pause:gpu"
		withGPU := func(set *nasv1alpha1.NodeAgentSet) {
			set.Spec.NodeOverrides = []nasv1alpha1.NodeOverride{{Name: "gpu",
				NodeSelector: metav1.LabelSelector{MatchLabels: map[string]string{"gpu": "true"}},
				Containers:   []nasv1alpha1.ContainerOverride{{Name: "agent", Image: gpuImage}}}}
		}
		s.createSet("agent", withCanary(false, nasv1alpha1.CanaryFailurePause), withGPU)
		k := s.rolloutKubelet()
		k.eventually(func(g Gomega) {
			runningEverywhere(g, viewPods(s.agentPods(g)), shortNodeNames(3), s.getSet("agent").Status.UpdateRevision, imageV1)
		})
		stable := s.getSet("agent").Status.UpdateRevision
		s.updateSet(func(set *nasv1alpha1.NodeAgentSet) { set.Spec.Template.Spec.Containers[0].Image = imageV2 })
		var hash string
		k.eventually(func(g Gomega) {
			st := s.getSet("agent").Status.Canary
			g.Expect(st).To(HaveField("Phase", nasv1alpha1.CanaryWaitingForPromotion))
			hash = st.Revision
		})

		// The gpu override sets the image the new revision changes: a gpu node's pod is the same in both.
		s.addNode("gpu-0", withLabels("gpu", "true"))
		var held corev1.Pod
		k.eventually(func(g Gomega) {
			held = s.agentPods(g)["gpu-0"]
			g.Expect(held.Labels).To(And(HaveKeyWithValue(nasv1alpha1.ControllerRevisionHashLabel, stable),
				HaveKeyWithValue(planner.OverrideLabel, "gpu")))
			g.Expect(held.Spec.Containers[0].Image).To(Equal(gpuImage), "the stable revision's override for the node")
			s.canaryInvariant(g, hash, "node-0")
		})
		k.consistently(time.Second, func(g Gomega) {
			g.Expect(s.agentPods(g)["gpu-0"]).To(And(HaveField("Name", held.Name),
				HaveField("Labels", HaveKeyWithValue(nasv1alpha1.ControllerRevisionHashLabel, stable))))
		})

		s.decide(planner.CanaryDecisionPromote, hash)
		k.eventually(func(g Gomega) {
			pods := s.agentPods(g)
			g.Expect(pods).To(HaveKeyWithValue("gpu-0", And(HaveField("Name", held.Name),
				HaveField("Labels", HaveKeyWithValue(nasv1alpha1.ControllerRevisionHashLabel, hash)))), "relabelled, not replaced")
			for _, n := range shortNodeNames(3) {
				g.Expect(pods[n].Labels).To(HaveKeyWithValue(nasv1alpha1.ControllerRevisionHashLabel, hash))
				g.Expect(pods[n].Spec.Containers[0].Image).To(Equal(imageV2))
			}
		})
	})
})
