package plugin

import (
	"fmt"
	"os"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
)

// transcriptEnv names the file the walkthrough writes its transcript to; docs/kubectl-plugin.md shows
// this output. Unset: the walkthrough runs and asserts, and writes nothing.
const transcriptEnv = "NAS_PLUGIN_TRANSCRIPT"

// transcript records commands and what they printed, as a shell session would show them.
type transcript struct {
	s *scenario
	b strings.Builder
}

func (t *transcript) run(args ...string) result {
	r := t.s.run(args...)
	fmt.Fprintf(&t.b, "$ kubectl nas %s -n %s\n%s%s", strings.Join(args, " "), t.s.ns, r.out, r.err)
	if r.code != 0 {
		fmt.Fprintf(&t.b, "$ echo $?\n%d\n", r.code)
	}
	t.b.WriteString("\n")
	return r
}

func (t *transcript) note(comment string) {
	fmt.Fprintf(&t.b, "# %s\n", comment)
}

// The walkthrough builds one realistic situation (a rollout stuck on a crash loop, an unschedulable pod
// and a node that is not ready; nodes excluded by a taint and by affinity) and runs every command on
// it, as docs/kubectl-plugin.md shows.
var _ = Describe("the kubectl-nas walkthrough", Serial, func() {
	It("runs every command on one cluster", func() {
		s := newScenarioIn("observability")
		t := &transcript{s: s}
		DeferCleanup(func() {
			if path := os.Getenv(transcriptEnv); path != "" {
				Expect(os.WriteFile(path, []byte(t.b.String()), 0o644)).To(Succeed())
			}
		})
		const name = "log-collector"
		image := func(v string) string { return "ghcr.io/example/log-collector:" + v }

		for i := 1; i <= 5; i++ {
			s.addNode(fmt.Sprintf("worker-%d", i), withLabels(corev1.LabelArchStable, "amd64"))
		}
		s.addNode("gpu-1", withTaint("nvidia.com/gpu", "present", corev1.TaintEffectNoSchedule))
		s.addNode("win-1", withLabels(corev1.LabelOSStable, "windows"))
		s.addNode("cp-1", withLabels("node-role.kubernetes.io/control-plane", ""),
			withTaint("node-role.kubernetes.io/control-plane", "", corev1.TaintEffectNoSchedule))
		s.updateNodeStatus("worker-5", notReady("NodeStatusUnknown", "Kubelet stopped posting node status."))
		// worker-3 is full: a database takes most of its memory.
		s.updateNodeStatus("worker-3", func(n *corev1.Node) {
			n.Status.Allocatable = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2"),
				corev1.ResourceMemory: resource.MustParse("2Gi"), corev1.ResourcePods: resource.MustParse("110")}
		})
		db := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "metrics-db-0", Namespace: metav1.NamespaceDefault},
			Spec: corev1.PodSpec{NodeName: "worker-3", Containers: []corev1.Container{{Name: "db", Image: "example.com/db:1",
				Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
					corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("1950Mi")}}}}}}
		Expect(k8s.Create(ctx, db)).To(Succeed())
		DeferCleanup(func() { Expect(k8s.Delete(ctx, db, client.GracePeriodSeconds(0))).To(Succeed()) })

		set := s.createSet(name, image("1.1.0"), func(set *nasv1alpha1.NodeAgentSet) {
			spec := &set.Spec.Template.Spec
			spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
				RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
					MatchExpressions: []corev1.NodeSelectorRequirement{{Key: corev1.LabelOSStable, Operator: corev1.NodeSelectorOpIn, Values: []string{"linux"}}},
				}}},
			}}
			c := &spec.Containers[0]
			c.Args = []string{"--input=/var/log", "--output=otlp://collector.observability:4317"}
			c.Env = []corev1.EnvVar{{Name: "NODE_NAME", ValueFrom: &corev1.EnvVarSource{
				FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "spec.nodeName"}}}}
			c.Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi")}
			c.VolumeMounts = []corev1.VolumeMount{{Name: "varlog", MountPath: "/var/log", ReadOnly: true}}
			spec.Volumes = []corev1.Volume{{Name: "varlog", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/var/log"}}}}
		})
		s.addRevision(set, 1, "initial deploy")
		old := s.rollout(name, image("1.2.0"), 2, "kubectl apply -f log-collector.yaml: JSON output")
		cur := s.rollout(name, image("1.3.0"), 3, "1.3.0: journald input")
		set = s.getSet(name)

		s.addPod(set, "worker-1", cur)
		crash := s.addPod(set, "worker-2", cur, waiting("CrashLoopBackOff", "back-off 5m0s restarting failed container=agent", 6))
		s.addEvent("Pod", crash.Name, string(crash.UID), "BackOff", "Back-off restarting failed container agent in pod "+crash.Name)
		s.addPod(set, "worker-3", cur, unschedulable("0/8 nodes are available: 1 Insufficient memory, 7 node(s) didn't match Pod's node "+
			"affinity/selector. preemption: 0/8 nodes are available: 1 No preemption victims found for incoming pod, "+
			"7 Preemption is not helpful for scheduling."))
		s.addPod(set, "worker-4", old)
		s.addPod(set, "worker-5", old, notReadyPod())
		s.computeStatus(name, cur, true)

		t.note("The rollout of 1.3.0 is stuck:")
		Expect(t.run("rollout", "status", name).code).To(Equal(1))
		Expect(t.run("rollout", "history", name).code).To(Equal(0))
		Expect(t.run("rollout", "history", name, "--revision", "3").code).To(Equal(0))
		Expect(t.run("nodes", name).code).To(Equal(0))
		for _, node := range []string{"worker-1", "worker-2", "worker-3", "worker-4", "worker-5", "gpu-1", "win-1", "cp-1"} {
			Expect(t.run("why", name, node).code).To(Equal(0))
		}
		Expect(t.run("why", name, "worker-2", "-o", "yaml").code).To(Equal(0))
		Expect(t.run("rollout", "undo", name, "--to-revision", "7").code).To(Equal(1))
		Expect(t.run("rollout", "undo", name, "--dry-run").code).To(Equal(0))
		Expect(t.run("rollout", "undo", name).code).To(Equal(0))
		Expect(s.getSet(name).Spec.Template.Spec.Containers[0].Image).To(Equal(image("1.2.0")))

		t.note("The controller reuses revision 2 as revision 4 (done here by hand: no controller runs in this walkthrough).")
		renumber(s, old, 4)
		Expect(t.run("rollout", "history", name).code).To(Equal(0))
		Expect(t.run("rollout", "undo", name, "--to-revision", "4").code).To(Equal(0))

		t.note("The controller replaces the 1.3.0 pods and the status catches up (again by hand):")
		set = s.getSet(name)
		for _, node := range []string{"worker-1", "worker-2", "worker-3"} {
			Expect(k8s.Delete(ctx, s.podOn(node), client.GracePeriodSeconds(0))).To(Succeed())
			s.addPod(set, node, old)
		}
		s.computeStatus(name, old, false)
		Expect(t.run("rollout", "status", name, "--watch=false").code).To(Equal(0))
		Expect(t.run("rollout", "pause", name).code).To(Equal(0))
		Expect(t.run("rollout", "pause", name).code).To(Equal(1))
		s.computeStatus(name, old, false)
		Expect(t.run("rollout", "status", name, "--watch=false").code).To(Equal(0))
		Expect(t.run("rollout", "resume", name).code).To(Equal(0))
		Expect(t.run("rollout", "restart", name).code).To(Equal(0))
		Expect(t.run("rollout", "status", name, "--watch=false").code).To(Equal(0))
		Expect(t.run("rollout", "status", name, "--timeout", "2s").code).To(Equal(1))

		s.updateSet(name, func(set *nasv1alpha1.NodeAgentSet) {
			set.Spec.UpdateStrategy = nasv1alpha1.NodeAgentSetUpdateStrategy{Type: nasv1alpha1.OnDeleteStrategyType}
		})
		t.note("With the OnDelete strategy:")
		Expect(t.run("rollout", "status", name).code).To(Equal(1))
		Expect(t.run("rollout", "status", "no-such-set").code).To(Equal(1))
	})
})

// renumber gives the revision with the hash a new number, as the controller does on a rollback.
func renumber(s *scenario, hash string, number int64) {
	var list appsv1.ControllerRevisionList
	Expect(k8s.List(ctx, &list, client.InNamespace(s.ns), client.MatchingLabels{nasv1alpha1.ControllerRevisionHashLabel: hash})).To(Succeed())
	Expect(list.Items).To(HaveLen(1))
	cr := &list.Items[0]
	cr.Revision = number
	Expect(k8s.Update(ctx, cr)).To(Succeed())
}

// updateNodeStatus replaces a node's conditions.
func (s *scenario) updateNodeStatus(name string, opt nodeOpt) {
	node := &corev1.Node{}
	Expect(k8s.Get(ctx, client.ObjectKey{Name: name}, node)).To(Succeed())
	opt(node)
	Expect(k8s.Status().Update(ctx, node)).To(Succeed())
}
