package plugin

import (
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
	"github.com/nodeagentset/nodeagentset/internal/planner"
	"github.com/nodeagentset/nodeagentset/internal/plugin"
)

var _ = Describe("kubectl nas why", Serial, func() {
	var s *scenario
	BeforeEach(func() { s = newScenario() })

	// why runs `why agent NODE` and returns its lines, expecting success.
	why := func(node string) []string {
		GinkgoHelper()
		r := s.run("why", "agent", node)
		Expect(r.err).To(BeEmpty())
		Expect(r.code).To(Equal(0))
		return lines(r.out)
	}

	Context("on a node that is not eligible", func() {
		It("names the template's nodeName", func() {
			s.createSet("agent", "example.com/agent:1", func(set *nasv1alpha1.NodeAgentSet) { set.Spec.Template.Spec.NodeName = "worker-1" })
			s.addNode("worker-1")
			s.addNode("worker-2")
			Expect(why("worker-2")).To(Equal([]string{
				"Node worker-2 is not eligible for node agent set " + s.ns + "/agent: template spec.nodeName is worker-1.",
				"  spec.template.spec.nodeName is worker-1: the agent runs on that node only.",
				"No agent pod of the set is on the node.",
			}))
		})

		It("names every nodeSelector entry that does not match, with the node's value", func() {
			s.createSet("agent", "example.com/agent:1", func(set *nasv1alpha1.NodeAgentSet) {
				set.Spec.Template.Spec.NodeSelector = map[string]string{"pool": "general", "zone": "a", corev1.LabelOSStable: "linux"}
			})
			s.addNode("worker-1", withLabels("zone", "b"))
			Expect(why("worker-1")).To(Equal([]string{
				"Node worker-1 is not eligible for node agent set " + s.ns + "/agent: " + saidSelector("pool", "general") + ".",
				"  nodeSelector pool=general does not match: the node has no label pool.",
				"  nodeSelector zone=a does not match: the node has zone=b.",
				"No agent pod of the set is on the node.",
			}))
		})

		It("shows, for each required node affinity term, the requirements that fail", func() {
			s.createSet("agent", "example.com/agent:1", func(set *nasv1alpha1.NodeAgentSet) {
				set.Spec.Template.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
					RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{
						{MatchExpressions: []corev1.NodeSelectorRequirement{
							{Key: corev1.LabelOSStable, Operator: corev1.NodeSelectorOpIn, Values: []string{"linux"}},
							{Key: corev1.LabelArchStable, Operator: corev1.NodeSelectorOpIn, Values: []string{"arm64"}},
							{Key: "node-role.kubernetes.io/edge", Operator: corev1.NodeSelectorOpExists},
						}},
						{MatchFields: []corev1.NodeSelectorRequirement{
							{Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: []string{"edge-1", "edge-2"}},
						}},
					}},
				}}
			})
			s.addNode("worker-1", withLabels(corev1.LabelArchStable, "amd64"))
			Expect(why("worker-1")).To(Equal([]string{
				"Node worker-1 is not eligible for node agent set " + s.ns + "/agent: " + said(planner.ReasonNodeAffinityMismatch) + ".",
				"  required node affinity does not match: none of its 2 term(s) matches the node (terms are ORed; every requirement of a term must hold):",
				"    term 1: kubernetes.io/arch In [arm64] (the node has kubernetes.io/arch=amd64); " +
					"node-role.kubernetes.io/edge Exists (the node has no label node-role.kubernetes.io/edge)",
				"    term 2: metadata.name In [edge-1 edge-2] (the node's metadata.name is worker-1)",
				"No agent pod of the set is on the node.",
			}))
		})

		It("names an untolerated NoSchedule taint, the toleration to add, and keeps the pod already there", func() {
			set := s.createSet("agent", "example.com/agent:1")
			hash := s.addRevision(set, 1, "")
			s.addNode("gpu-1", withTaint("dedicated", "gpu", corev1.TaintEffectNoSchedule),
				withTaint("soft", "", corev1.TaintEffectPreferNoSchedule))
			pod := s.addPod(set, "gpu-1", hash)
			Expect(why("gpu-1")).To(Equal([]string{
				"Node gpu-1 is not eligible for node agent set " + s.ns + "/agent: " + saidTaint("dedicated", "gpu", corev1.TaintEffectNoSchedule) + ".",
				"  taint dedicated=gpu:NoSchedule is not tolerated: no new agent pod is created there; one already running may stay (NoSchedule).",
				"To run the agent there, tolerate the taint in spec.template.spec.tolerations, e.g. {key: dedicated, operator: Equal, value: gpu, effect: NoSchedule}.",
				"Agent pod " + pod.Name + " is still on the node (misscheduled): it may stay, because only NoSchedule taints exclude the node; " +
					"no new pod is created there.",
			}))
		})

		It("names an untolerated NoExecute taint, which evicts the agent", func() {
			set := s.createSet("agent", "example.com/agent:1", func(set *nasv1alpha1.NodeAgentSet) {
				set.Spec.Template.Spec.Tolerations = []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpExists}}
			})
			hash := s.addRevision(set, 1, "")
			s.addNode("worker-1", withTaint("dedicated", "gpu", corev1.TaintEffectNoSchedule),
				withTaint("maintenance", "", corev1.TaintEffectNoExecute))
			pod := s.addPod(set, "worker-1", hash)
			Expect(why("worker-1")).To(Equal([]string{
				"Node worker-1 is not eligible for node agent set " + s.ns + "/agent: " + saidTaint("maintenance", "", corev1.TaintEffectNoExecute) + ".",
				"  taint maintenance:NoExecute is not tolerated: an agent pod on the node is deleted (NoExecute).",
				"To run the agent there, tolerate the taint in spec.template.spec.tolerations, e.g. {key: maintenance, operator: Exists, effect: NoExecute}.",
				"Agent pod " + pod.Name + " is still on the node (misscheduled): the controller deletes it.",
			}))
		})

		It("lists every constraint that excludes the node, not only the first", func() {
			s.createSet("agent", "example.com/agent:1", func(set *nasv1alpha1.NodeAgentSet) {
				set.Spec.Template.Spec.NodeSelector = map[string]string{"pool": "general"}
			})
			s.addNode("worker-1", withTaint("dedicated", "gpu", corev1.TaintEffectNoExecute))
			Expect(why("worker-1")).To(Equal([]string{
				"Node worker-1 is not eligible for node agent set " + s.ns + "/agent: " + saidSelector("pool", "general") + ".",
				"  nodeSelector pool=general does not match: the node has no label pool.",
				"  taint dedicated=gpu:NoExecute is not tolerated: an agent pod on the node is deleted (NoExecute).",
				"To run the agent there, tolerate the taint in spec.template.spec.tolerations, e.g. {key: dedicated, operator: Equal, value: gpu, effect: NoExecute}.",
				"No agent pod of the set is on the node.",
			}))
		})

		It("tolerates what the controller tolerates automatically", func() {
			set := s.createSet("agent", "example.com/agent:1")
			hash := s.addRevision(set, 1, "")
			s.addNode("worker-1", withTaint(corev1.TaintNodeUnschedulable, "", corev1.TaintEffectNoSchedule))
			pod := s.addPod(set, "worker-1", hash)
			Expect(why("worker-1")[0]).To(HavePrefix("Node worker-1 runs an available agent pod " + pod.Name + " of the current revision"))
		})
	})

	Context("on an eligible node", func() {
		var set *nasv1alpha1.NodeAgentSet
		var old, cur string
		BeforeEach(func() {
			set = s.createSet("agent", "example.com/agent:1")
			old = s.addRevision(set, 1, "")
			set = s.updateSet("agent", setImage("example.com/agent:2"))
			cur = s.addRevision(set, 2, "")
			s.addNode("worker-1")
		})

		It("says the node runs an available pod of the current revision", func() {
			pod := s.addPod(set, "worker-1", cur)
			Expect(why("worker-1")).To(Equal([]string{
				"Node worker-1 runs an available agent pod " + pod.Name + " of the current revision (revision 2, hash " + cur + ").",
			}))
		})

		It("says why an available old pod was not replaced yet", func() {
			pod := s.addPod(set, "worker-1", old)
			first := "Node worker-1 runs an available agent pod " + pod.Name + " of revision 1, hash " + old +
				", not of the current revision (revision 2, hash " + cur + ")."
			Expect(why("worker-1")).To(Equal([]string{first,
				"  The rolling update replaces it within the maxUnavailable/maxSurge budget; 0 of 1 eligible nodes lack an available pod now " +
					"(see 'kubectl nas rollout status agent')."}))

			s.updateSet("agent", func(set *nasv1alpha1.NodeAgentSet) {
				set.Spec.UpdateStrategy.RollingUpdate = &nasv1alpha1.RollingUpdateNodeAgentSet{Partition: ptr.To(intstr.FromInt32(1))}
			})
			Expect(why("worker-1")).To(Equal([]string{first,
				"  The node is in the rollout's partition (the last 1 eligible nodes by name still running an older template, from worker-1 on): " +
					"it keeps its pod until the partition is lowered."}))

			s.updateSet("agent", func(set *nasv1alpha1.NodeAgentSet) { set.Spec.UpdateStrategy.RollingUpdate.Paused = true })
			Expect(why("worker-1")).To(Equal([]string{first,
				"  The rollout is paused (spec.updateStrategy.rollingUpdate.paused): resume it with 'kubectl nas rollout resume agent'."}))

			s.updateSet("agent", func(set *nasv1alpha1.NodeAgentSet) {
				set.Spec.UpdateStrategy = nasv1alpha1.NodeAgentSetUpdateStrategy{Type: nasv1alpha1.OnDeleteStrategyType}
			})
			Expect(why("worker-1")).To(Equal([]string{first,
				"  The update strategy is OnDelete: the pod is replaced only once someone deletes it."}))
		})

		It("says when there is no pod yet, with the set's warnings about the node", func() {
			s.addEvent("NodeAgentSet", "agent", string(set.UID), "FailedCreate",
				`Error creating: pods "agent-" is forbidden: exceeded quota: pods, node worker-1`)
			s.addEvent("NodeAgentSet", "agent", string(set.UID), "FailedCreate", "about another node, worker-10")
			out := why("worker-1")
			Expect(out[:2]).To(Equal([]string{
				"Node worker-1 should run an agent pod of node agent set " + s.ns + "/agent but has no available one: " + said(planner.ReasonNoPod) + ".",
				"  The controller creates the pod on its next pass. If this lasts, check that the controller runs, " +
					"and look at the set's events below and with 'kubectl describe nas'.",
			}))
			Expect(out[2]).To(Equal("Recent warnings:"))
			Expect(out[3]).To(MatchRegexp(`^  \d+s ago  NodeAgentSet/agent  FailedCreate: ` +
				`Error creating: pods "agent-" is forbidden: exceeded quota: pods, node worker-1$`))
			Expect(out).To(HaveLen(4))
		})

		It("compares a full node's free allocatable with the agent's requests, and suggests a PriorityClass", func() {
			schedulerSays := "0/3 nodes are available: 1 Insufficient memory, 2 node(s) didn't match " +
				"Pod's node affinity/selector. preemption: 0/3 nodes are available: 1 No preemption victims found for incoming pod."
			node := &corev1.Node{}
			Expect(k8s.Get(ctx, client.ObjectKey{Name: "worker-1"}, node)).To(Succeed())
			node.Status.Allocatable = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi"), corev1.ResourcePods: resource.MustParse("110")}
			Expect(k8s.Status().Update(ctx, node)).To(Succeed())
			hog := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "hog", Namespace: s.ns}, Spec: corev1.PodSpec{NodeName: "worker-1",
				Containers: []corev1.Container{{Name: "hog", Image: "example.com/hog:1", Resources: corev1.ResourceRequirements{
					Requests: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("900Mi")}}}}}}
			Expect(k8s.Create(ctx, hog)).To(Succeed())
			pod := s.addPod(set, "worker-1", cur, unschedulable(schedulerSays), func(p *corev1.Pod) {
				p.Spec.Containers[0].Resources.Requests = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi")}
			})
			out := why("worker-1")
			Expect(out[0]).To(ContainSubstring("node full (insufficient memory)"))
			Expect(out).To(ContainElements(
				"  Agent pod "+pod.Name+" is pending: the node is full (the scheduler says: "+schedulerSays+").",
				"  memory: the agent requests 256Mi; the node has 1Gi allocatable, 900Mi requested by 1 pods: 124Mi free.",
				"  Give the agent a PriorityClass such as system-node-critical (spec.template.spec.priorityClassName): the scheduler "+
					"then preempts lower-priority pods to make room. Or lower the agent's requests.",
			))
		})

		It("gives the scheduler's message for an unschedulable pod", func() {
			schedulerSays := "0/3 nodes are available: 1 node(s) didn't have free ports for the requested pod ports, 2 node(s) didn't match " +
				"Pod's node affinity/selector. preemption: 0/3 nodes are available: 1 No preemption victims found for incoming pod."
			pod := s.addPod(set, "worker-1", cur, unschedulable(schedulerSays))
			Expect(why("worker-1")).To(Equal([]string{
				"Node worker-1 should run an agent pod of node agent set " + s.ns + "/agent but has no available one: " +
					planner.NodeReason{Code: planner.ReasonUnschedulable, SchedulerReason: "Unschedulable", Message: schedulerSays}.String() + ".",
				"  Agent pod " + pod.Name + " is pending: the scheduler cannot place it on the node (Unschedulable).",
				"  The scheduler says: " + schedulerSays,
				"  The controller checks only nodeName, nodeSelector, node affinity and taints; the scheduler also needs room " +
					"(resources, host ports) on the node.",
			}))
		})

		It("explains an image that cannot be pulled", func() {
			pod := s.addPod(set, "worker-1", cur, waiting("ImagePullBackOff", `Back-off pulling image "example.com/agent:2"`, 0))
			Expect(why("worker-1")).To(Equal([]string{
				"Node worker-1 should run an agent pod of node agent set " + s.ns + "/agent but has no available one: " +
					saidContainer(planner.ReasonImagePull, "ImagePullBackOff") + ".",
				"  Container agent of agent pod " + pod.Name + ` is waiting: ImagePullBackOff (Back-off pulling image "example.com/agent:2").`,
				"  The kubelet cannot pull image example.com/agent:2: check the image name and tag, the registry, and the pod's imagePullSecrets.",
			}))
		})

		It("explains a crash loop, with the pod's warnings", func() {
			pod := s.addPod(set, "worker-1", cur, waiting("CrashLoopBackOff", "back-off 5m0s restarting failed container=agent", 12))
			s.addEvent("Pod", pod.Name, string(pod.UID), "BackOff", "Back-off restarting failed container agent in pod "+pod.Name)
			out := why("worker-1")
			Expect(out[:3]).To(Equal([]string{
				"Node worker-1 should run an agent pod of node agent set " + s.ns + "/agent but has no available one: " +
					saidContainer(planner.ReasonCrashLoop, "CrashLoopBackOff") + ".",
				"  Container agent of agent pod " + pod.Name + " is waiting: CrashLoopBackOff (back-off 5m0s restarting failed container=agent).",
				"  It keeps crashing: restarted 12 times; last exit code 2 (Error) at 2026-11-22T06:01:30Z. Its logs: kubectl logs -n " + s.ns +
					" " + pod.Name + " -c agent --previous",
			}))
			Expect(out[3:]).To(HaveLen(2))
			Expect(out[3]).To(Equal("Recent warnings:"))
			Expect(out[4]).To(MatchRegexp(`^  \d+s ago  Pod/` + pod.Name + `  BackOff: Back-off restarting failed container agent in pod ` + pod.Name + `$`))
		})

		It("explains a node that is not ready", func() {
			s.addNode("worker-2", notReady("KubeletNotReady", "container runtime network not ready"))
			pod := s.addPod(set, "worker-2", cur, notReadyPod())
			out := why("worker-2")
			Expect(out).To(HaveLen(3))
			Expect(out[0]).To(Equal("Node worker-2 should run an agent pod of node agent set " + s.ns + "/agent but has no available one: " +
				said(planner.ReasonNodeNotReady) + "."))
			Expect(out[1]).To(MatchRegexp(`^  The node's Ready condition is False since \S+Z \(KubeletNotReady: container runtime network not ready\)\.$`))
			Expect(out[2]).To(Equal("  Agent pod " + pod.Name + " cannot become ready until the kubelet reports the node ready again."))
		})

		It("explains a terminating pod", func() {
			// The kubelet marks the containers of a terminating pod not ready.
			pod := s.addPod(set, "worker-1", cur, withFinalizer(), notReadyPod())
			terminate(pod)
			out := why("worker-1")
			Expect(out).To(HaveLen(4))
			Expect(out[0]).To(Equal("Node worker-1 should run an agent pod of node agent set " + s.ns + "/agent but has no available one: " +
				said(planner.ReasonPodTerminating) + "."))
			Expect(out[1]).To(MatchRegexp(`^  Agent pod ` + pod.Name + ` is being deleted \(grace period 30s, ends in \d+s\)\.$`))
			Expect(out[2:]).To(Equal([]string{
				"  It waits for its finalizers to be removed: example.com/drain.",
				"  Its replacement is created once it is gone (at once with maxSurge).",
			}))
		})

		It("says when an available pod is terminating", func() {
			pod := s.addPod(set, "worker-1", cur, withFinalizer())
			terminate(pod)
			out := why("worker-1")
			Expect(out).To(HaveLen(2))
			Expect(out[0]).To(Equal("Node worker-1 runs an available agent pod " + pod.Name + " of the current revision (revision 2, hash " + cur + ")."))
			Expect(out[1]).To(MatchRegexp(`^  The pod is being deleted \(grace period 30s, ends in \d+s\): ` +
				`it counts as available until it is gone or stops being ready; its replacement is created once it is gone \(at once with maxSurge\)\.$`))
			Expect(table(s.run("nodes", "agent").out)[0]).To(
				HaveExactElements("worker-1", "yes", pod.Name, "2", "1/1", "yes", "AGE", said(planner.ReasonPodTerminating)))
		})

		It("explains a pod that runs but is not ready, or is still starting", func() {
			pod := s.addPod(set, "worker-1", old, notReadyPod())
			Expect(why("worker-1")).To(Equal([]string{
				"Node worker-1 should run an agent pod of node agent set " + s.ns + "/agent but has no available one: " + said(planner.ReasonPodNotReady) + ".",
				"  Agent pod " + pod.Name + " runs but is not ready: container(s) agent not ready (check their readiness probes).",
				"  The pod runs revision 1, hash " + old + "; the current revision is revision 2, hash " + cur + ".",
			}))

			s.addNode("worker-2")
			starting := s.addPod(set, "worker-2", cur, pending())
			Expect(why("worker-2")).To(Equal([]string{
				"Node worker-2 should run an agent pod of node agent set " + s.ns + "/agent but has no available one: " + said(planner.ReasonPodStarting) + ".",
				"  Agent pod " + starting.Name + " is bound to the node and starting (phase Pending).",
			}))
		})

		It("explains minReadySeconds", func() {
			s.updateSet("agent", func(set *nasv1alpha1.NodeAgentSet) { set.Spec.MinReadySeconds = 3600 })
			pod := s.addPod(set, "worker-1", cur)
			out := why("worker-1")
			Expect(out).To(HaveLen(2))
			Expect(out[0]).To(Equal("Node worker-1 should run an agent pod of node agent set " + s.ns +
				"/agent but has no available one: " + said(planner.ReasonMinReadySeconds) + "."))
			Expect(out[1]).To(MatchRegexp(`^  Agent pod ` + pod.Name + ` is ready since \S+Z; it counts as available after minReadySeconds \(3600s\), at \S+Z\.$`))
		})

		It("prints the report with -o yaml", func() {
			pod := s.addPod(set, "worker-1", cur)
			r := s.run("why", "agent", "worker-1", "-o", "yaml")
			Expect(r.code).To(Equal(0))
			var report plugin.NodeReport
			Expect(yaml.Unmarshal([]byte(r.out), &report)).To(Succeed())
			Expect(report.Kind).To(Equal("NodeAgentSetNode"))
			Expect(report.Metadata.Name).To(Equal("worker-1"))
			Expect(report.Eligible).To(BeTrue())
			Expect(report.Healthy).To(BeTrue())
			Expect(report.Pod.Name).To(Equal(pod.Name))
			Expect(report.Explanation).To(HaveLen(1))
			Expect(report.Explanation[0]).To(ContainSubstring("of the current revision"))
		})
	})

	It("fails on an unknown node or set", func() {
		s.createSet("agent", "example.com/agent:1")
		r := s.run("why", "agent", "nowhere")
		Expect(r).To(Equal(result{err: `Error from server (NotFound): nodes "nowhere" not found` + "\n", code: 1}))
		r = s.run("why", "nope", "nowhere")
		Expect(r).To(Equal(result{err: `Error from server (NotFound): nodeagentsets.apps.nodeagentset.io "nope" not found` + "\n", code: 1}))
		r = s.run("why", "agent")
		Expect(r).To(Equal(result{err: "error: NODE is required\n", code: 1}))
		Expect(strings.Contains(r.out, "Usage")).To(BeFalse())
	})
})
