package plugin

import (
	"encoding/json"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
	"github.com/nodeagentset/nodeagentset/internal/plugin"
)

var _ = Describe("kubectl nas rollout status", Serial, func() {
	var s *scenario
	BeforeEach(func() {
		s = newScenario()
		s.createSet("agent", "example.com/agent:1")
	})

	It("fails on an unknown set, as kubectl does", func() {
		r := s.run("rollout", "status", "nope")
		Expect(r.code).To(Equal(1))
		Expect(r.out).To(BeEmpty())
		Expect(r.err).To(Equal(`Error from server (NotFound): nodeagentsets.apps.nodeagentset.io "nope" not found` + "\n"))
	})

	It("refuses the OnDelete strategy with kubectl's message", func() {
		s.updateSet("agent", func(set *nasv1alpha1.NodeAgentSet) {
			set.Spec.UpdateStrategy = nasv1alpha1.NodeAgentSetUpdateStrategy{Type: nasv1alpha1.OnDeleteStrategyType}
		})
		s.setStatus("agent", counters(3, 1, 3))
		r := s.run("rollout", "status", "agent")
		Expect(r.code).To(Equal(1))
		Expect(r.err).To(Equal("error: rollout status is only available for RollingUpdate strategy type\n"))
	})

	It("waits for the spec update to be observed", func() {
		// A new set has generation 1 and no observed generation.
		r := s.run("rollout", "status", "agent", "--watch=false")
		Expect(r.code).To(Equal(0))
		Expect(r.out).To(Equal("Waiting for node agent set spec update to be observed...\n"))
	})

	It("counts updated, then available pods, with --watch=false printing once and exiting 0", func() {
		s.setStatus("agent", counters(3, 1, 2))
		r := s.run("rollout", "status", "agent", "--watch=false")
		Expect(r).To(Equal(result{out: `Waiting for node agent set "agent" rollout to finish: 1 out of 3 new pods have been updated...` + "\n"}))

		s.setStatus("agent", counters(3, 3, 2))
		r = s.run("rollout", "status", "agent", "--watch=false")
		Expect(r).To(Equal(result{out: `Waiting for node agent set "agent" rollout to finish: 2 of 3 updated pods are available...` + "\n"}))
	})

	It("succeeds once every eligible node runs an available updated pod", func() {
		s.setStatus("agent", counters(3, 3, 3))
		r := s.run("rollout", "status", "agent")
		Expect(r).To(Equal(result{out: `node agent set "agent" successfully rolled out` + "\n"}))
	})

	It("succeeds for a set with no eligible node", func() {
		s.setStatus("agent", counters(0, 0, 0))
		Expect(s.run("rollout", "status", "agent").code).To(Equal(0))
	})

	It("watches until the rollout is done", func() {
		s.setStatus("agent", counters(2, 1, 1))
		done := make(chan result)
		go func() {
			defer GinkgoRecover()
			done <- s.run("rollout", "status", "agent", "--timeout", "30s")
		}()
		time.Sleep(500 * time.Millisecond)
		s.setStatus("agent", counters(2, 2, 1))
		time.Sleep(200 * time.Millisecond)
		s.setStatus("agent", counters(2, 2, 2))
		var r result
		Eventually(done, 20*time.Second).Should(Receive(&r))
		Expect(r.code).To(Equal(0))
		Expect(lines(r.out)).To(Equal([]string{
			`Waiting for node agent set "agent" rollout to finish: 1 out of 2 new pods have been updated...`,
			`Waiting for node agent set "agent" rollout to finish: 1 of 2 updated pods are available...`,
			`node agent set "agent" successfully rolled out`,
		}))
	})

	It("gives up after --timeout with kubectl's error", func() {
		s.setStatus("agent", counters(2, 1, 1))
		start := time.Now()
		r := s.run("rollout", "status", "agent", "--timeout", "1s")
		Expect(time.Since(start)).To(BeNumerically("<", 10*time.Second))
		Expect(r.code).To(Equal(1))
		Expect(r.out).To(ContainSubstring("1 out of 2 new pods have been updated..."))
		Expect(r.err).To(Equal("error: timed out waiting for the condition\n"))
	})

	It("fails when the object is deleted while watching", func() {
		s.setStatus("agent", counters(2, 1, 1))
		done := make(chan result)
		go func() {
			defer GinkgoRecover()
			done <- s.run("rollout", "status", "agent", "--timeout", "30s")
		}()
		time.Sleep(500 * time.Millisecond)
		Expect(k8s.Delete(ctx, s.getSet("agent"))).To(Succeed())
		var r result
		Eventually(done, 20*time.Second).Should(Receive(&r))
		Expect(r.code).To(Equal(1))
		Expect(r.err).To(Equal("error: object has been deleted\n"))
	})

	It("fails, naming the stuck nodes, when the progress deadline is exceeded", func() {
		s.setStatus("agent", func(st *nasv1alpha1.NodeAgentSetStatus) {
			counters(3, 2, 1)(st)
			meta.SetStatusCondition(&st.Conditions, metav1.Condition{
				Type: nasv1alpha1.ConditionProgressing, Status: metav1.ConditionFalse, Reason: nasv1alpha1.ReasonProgressDeadlineExceeded,
				Message: "no progress since 2026-11-22T06:01:30Z: 1 of 3 eligible nodes run an available pod of revision 6b7c9d; " +
					"stuck: worker-2 (container agent: CrashLoopBackOff)",
			})
		})
		for _, watch := range []string{"--watch=true", "--watch=false"} {
			r := s.run("rollout", "status", "agent", watch)
			Expect(r.code).To(Equal(1), watch)
			Expect(r.out).To(BeEmpty())
			Expect(r.err).To(Equal(`error: node agent set "agent" exceeded its progress deadline: no progress since 2026-11-22T06:01:30Z: ` +
				"1 of 3 eligible nodes run an available pod of revision 6b7c9d; stuck: worker-2 (container agent: CrashLoopBackOff)\n"))
		}
	})

	It("counts only the nodes outside the partition", func() {
		s.updateSet("agent", func(set *nasv1alpha1.NodeAgentSet) {
			set.Spec.UpdateStrategy.RollingUpdate = &nasv1alpha1.RollingUpdateNodeAgentSet{Partition: ptr.To(intstr.FromString("50%"))}
		})
		s.setStatus("agent", counters(4, 1, 4))
		r := s.run("rollout", "status", "agent", "--watch=false")
		Expect(r).To(Equal(result{out: "Waiting for partitioned roll out to finish: 1 out of 2 new pods have been updated...\n"}))
		s.setStatus("agent", counters(4, 2, 4))
		r = s.run("rollout", "status", "agent")
		Expect(r).To(Equal(result{out: "partitioned roll out complete: 2 new pods have been updated...\n"}))
	})

	It("says when the rollout is paused", func() {
		s.updateSet("agent", func(set *nasv1alpha1.NodeAgentSet) {
			set.Spec.UpdateStrategy.RollingUpdate = &nasv1alpha1.RollingUpdateNodeAgentSet{Paused: true}
		})
		s.setStatus("agent", counters(3, 1, 3))
		r := s.run("rollout", "status", "agent", "--watch=false")
		Expect(r.out).To(Equal(`Waiting for node agent set "agent" rollout to finish: 1 out of 3 new pods have been updated (rollout paused)...` + "\n"))
	})

	It("rejects a negative --revision as kubectl does", func() {
		r := s.run("rollout", "status", "agent", "--revision", "-1")
		Expect(r).To(Equal(result{err: "error: revision must be a positive integer: -1\n", code: 1}))
	})
})

var _ = Describe("kubectl nas rollout history", Serial, func() {
	var s *scenario
	BeforeEach(func() {
		s = newScenario()
	})

	It("lists the revisions with their change-cause, as kubectl's table", func() {
		set := s.createSet("agent", "example.com/agent:1")
		s.addRevision(set, 1, "")
		s.rollout("agent", "example.com/agent:2", 2, "kubectl set image nas/agent agent=example.com/agent:2")
		s.rollout("agent", "example.com/agent:3", 3, "agent 3: journald input")
		r := s.run("rollout", "history", "agent")
		Expect(r.code).To(Equal(0))
		Expect(r.err).To(BeEmpty())
		Expect(r.out).To(Equal("nodeagentset.apps.nodeagentset.io/agent \n" +
			"REVISION  CHANGE-CAUSE\n" +
			"1         <none>\n" +
			"2         kubectl set image nas/agent agent=example.com/agent:2\n" +
			"3         agent 3: journald input\n" +
			"\n"))
	})

	It("ignores revisions the set does not control", func() {
		set := s.createSet("agent", "example.com/agent:1")
		s.addRevision(set, 1, "mine")
		other := s.createSet("other", "example.com/agent:1", func(o *nasv1alpha1.NodeAgentSet) {
			// Same labels as agent's template, so agent's selector matches its revisions.
			o.Spec.Selector.MatchLabels = map[string]string{"app": "agent"}
			o.Spec.Template.Labels = map[string]string{"app": "agent"}
		})
		s.addRevision(other, 7, "not mine")
		r := s.run("rollout", "history", "agent")
		Expect(r.out).To(ContainSubstring("mine"))
		Expect(r.out).NotTo(ContainSubstring("not mine"))
	})

	It("shows one revision's pod template", func() {
		set := s.createSet("agent", "example.com/agent:1", func(set *nasv1alpha1.NodeAgentSet) {
			set.Spec.Template.Spec.Containers[0].Args = []string{"--verbose"}
			set.Spec.Template.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "NODE", ValueFrom: &corev1.EnvVarSource{
				FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "spec.nodeName"}}}}
			set.Spec.Template.Spec.Tolerations = []corev1.Toleration{{Operator: corev1.TolerationOpExists}}
		})
		s.addRevision(set, 1, "first")
		s.rollout("agent", "example.com/agent:2", 2, "second")
		r := s.run("rollout", "history", "agent", "--revision", "1")
		Expect(r.code).To(Equal(0))
		Expect(r.out).To(Equal("nodeagentset.apps.nodeagentset.io/agent with revision #1\n" +
			"Pod Template:\n" +
			"  Labels:\tapp=agent\n" +
			"  Containers:\n" +
			"   agent:\n" +
			"    Image:\texample.com/agent:1\n" +
			"    Port:\t<none>\n" +
			"    Host Port:\t<none>\n" +
			"    Args:\n" +
			"      --verbose\n" +
			"    Environment:\n" +
			"      NODE:\t (v1:spec.nodeName)\n" +
			"    Mounts:\t<none>\n" +
			"  Volumes:\t<none>\n" +
			"  Node-Selectors:\t<none>\n" +
			"  Tolerations:\top=Exists\n" +
			"\n"))
	})

	It("fails on a revision that does not exist", func() {
		set := s.createSet("agent", "example.com/agent:1")
		s.addRevision(set, 1, "")
		r := s.run("rollout", "history", "agent", "--revision", "9")
		Expect(r).To(Equal(result{err: "error: unable to find the specified revision\n", code: 1}))
		r = s.run("rollout", "history", "agent", "--revision", "9", "-o", "yaml")
		Expect(r).To(Equal(result{err: "error: unable to find the specified revision\n", code: 1}))
		r = s.run("rollout", "history", "agent", "--revision", "-2")
		Expect(r).To(Equal(result{err: "error: revision must be a positive integer: -2\n", code: 1}))
	})

	It("says when there is no history", func() {
		s.createSet("agent", "example.com/agent:1")
		r := s.run("rollout", "history", "agent")
		Expect(r).To(Equal(result{out: "nodeagentset.apps.nodeagentset.io/agent \nNo rollout history found.\n"}))
	})

	It("fails on an unknown set", func() {
		r := s.run("rollout", "history", "nope")
		Expect(r).To(Equal(result{err: `Error from server (NotFound): nodeagentsets.apps.nodeagentset.io "nope" not found` + "\n", code: 1}))
	})

	It("prints the set at each revision with -o", func() {
		set := s.createSet("agent", "example.com/agent:1")
		s.addRevision(set, 1, "")
		s.rollout("agent", "example.com/agent:2", 2, "")
		r := s.run("rollout", "history", "agent", "-o", "yaml")
		Expect(r.code).To(Equal(0))
		docs := strings.Split(r.out, "---\n")
		Expect(docs).To(HaveLen(2))
		for i, image := range []string{"example.com/agent:1", "example.com/agent:2"} {
			var got nasv1alpha1.NodeAgentSet
			Expect(yaml.Unmarshal([]byte(docs[i]), &got)).To(Succeed())
			Expect(got.Kind).To(Equal("NodeAgentSet"))
			Expect(got.Name).To(Equal("agent"))
			Expect(got.Spec.Template.Spec.Containers[0].Image).To(Equal(image))
			Expect(got.ManagedFields).To(BeEmpty())
		}

		r = s.run("rollout", "history", "agent", "--revision", "1", "-o", "json")
		Expect(r.code).To(Equal(0))
		var got nasv1alpha1.NodeAgentSet
		Expect(json.Unmarshal([]byte(r.out), &got)).To(Succeed())
		Expect(got.Spec.Template.Spec.Containers[0].Image).To(Equal("example.com/agent:1"))

		r = s.run("rollout", "history", "agent", "--revision", "1", "-o", "jsonpath={.spec.template.spec.containers[0].image}")
		Expect(r.out).To(Equal("example.com/agent:1"))
	})
})

var _ = Describe("kubectl nas rollout undo", Serial, func() {
	var s *scenario
	image := func() string { return s.getSet("agent").Spec.Template.Spec.Containers[0].Image }

	BeforeEach(func() {
		s = newScenario()
		set := s.createSet("agent", "example.com/agent:1")
		s.addRevision(set, 1, "one")
		s.rollout("agent", "example.com/agent:2", 2, "two")
		s.rollout("agent", "example.com/agent:3", 3, "three")
	})

	It("restores the previous revision's template, and nothing else", func() {
		before := s.getSet("agent")
		r := s.run("rollout", "undo", "agent")
		Expect(r).To(Equal(result{out: "nodeagentset.apps.nodeagentset.io/agent rolled back\n"}))
		after := s.getSet("agent")
		Expect(after.Spec.Template.Spec.Containers[0].Image).To(Equal("example.com/agent:2"))
		Expect(after.Generation).To(Equal(before.Generation + 1))
		after.Spec.Template = before.Spec.Template
		Expect(after.Spec).To(Equal(before.Spec))
		Expect(after.Annotations).To(Equal(before.Annotations))
	})

	It("restores a given revision", func() {
		r := s.run("rollout", "undo", "agent", "--to-revision", "1")
		Expect(r).To(Equal(result{out: "nodeagentset.apps.nodeagentset.io/agent rolled back\n"}))
		Expect(image()).To(Equal("example.com/agent:1"))
	})

	It("replaces the whole template, dropping fields the revision does not have", func() {
		s.updateSet("agent", func(set *nasv1alpha1.NodeAgentSet) {
			set.Spec.Template.Annotations = map[string]string{"note": "added after revision 1"}
			set.Spec.Template.Spec.Containers[0].Args = []string{"--new-flag"}
		})
		Expect(s.run("rollout", "undo", "agent", "--to-revision", "1").code).To(Equal(0))
		set := s.getSet("agent")
		Expect(set.Spec.Template.Annotations).To(BeEmpty())
		Expect(set.Spec.Template.Spec.Containers[0].Args).To(BeEmpty())
		Expect(set.Spec.Template.Spec.Containers[0].Image).To(Equal("example.com/agent:1"))
	})

	It("skips the rollback when the template already matches", func() {
		before := s.getSet("agent")
		r := s.run("rollout", "undo", "agent", "--to-revision", "3")
		Expect(r).To(Equal(result{out: "nodeagentset.apps.nodeagentset.io/agent skipped rollback (current template already matches revision 3)\n"}))
		Expect(s.getSet("agent").ResourceVersion).To(Equal(before.ResourceVersion))
	})

	It("fails on a revision that does not exist", func() {
		r := s.run("rollout", "undo", "agent", "--to-revision", "7")
		Expect(r).To(Equal(result{err: "error: unable to find specified revision 7 in history\n", code: 1}))
		r = s.run("rollout", "undo", "agent", "--to-revision", "-1")
		Expect(r).To(Equal(result{err: "error: unable to find specified revision -1 in history\n", code: 1}))
		Expect(image()).To(Equal("example.com/agent:3"))
	})

	It("fails when there is no previous revision", func() {
		s2 := s.createSet("solo", "example.com/agent:1")
		s.addRevision(s2, 1, "")
		r := s.run("rollout", "undo", "solo")
		Expect(r).To(Equal(result{err: "error: no last revision to roll back to\n", code: 1}))
	})

	It("fails on an unknown set", func() {
		r := s.run("rollout", "undo", "nope")
		Expect(r).To(Equal(result{err: `Error from server (NotFound): nodeagentsets.apps.nodeagentset.io "nope" not found` + "\n", code: 1}))
	})

	It("prints the template it would restore with --dry-run, and changes nothing", func() {
		for _, flag := range []string{"--dry-run", "--dry-run=client"} {
			r := s.run("rollout", "undo", "agent", flag)
			Expect(r.code).To(Equal(0))
			Expect(r.out).To(HavePrefix("nodeagentset.apps.nodeagentset.io/agent will roll back to Pod Template:\n  Labels:\tapp=agent\n"))
			Expect(r.out).To(ContainSubstring("    Image:\texample.com/agent:2\n"))
			Expect(r.out).To(HaveSuffix(" (dry run)\n"))
		}
		Expect(image()).To(Equal("example.com/agent:3"))
	})

	It("asks the API server with --dry-run=server, and changes nothing", func() {
		r := s.run("rollout", "undo", "agent", "--dry-run=server")
		Expect(r).To(Equal(result{out: "nodeagentset.apps.nodeagentset.io/agent rolled back (server dry run)\n"}))
		Expect(image()).To(Equal("example.com/agent:3"))
		r = s.run("rollout", "undo", "agent", "--dry-run=maybe")
		Expect(r).To(Equal(result{err: `error: Invalid dry-run value (maybe). Must be "none", "server", or "client".` + "\n", code: 1}))
	})

	It("warns about kubectl apply's annotation, as kubectl does", func() {
		s.updateSet("agent", func(set *nasv1alpha1.NodeAgentSet) {
			set.Annotations = map[string]string{corev1.LastAppliedConfigAnnotation: "{}"}
		})
		r := s.run("rollout", "undo", "agent")
		Expect(r.code).To(Equal(0))
		Expect(r.err).To(Equal("Warning: resource nodeagentsets/agent was previously managed with 'kubectl apply'. Rolling back will not update " +
			"the kubectl.kubernetes.io/last-applied-configuration annotation, which may cause unexpected behavior on future 'kubectl apply' " +
			"operations. Consider using 'kubectl apply' with your previous configuration file instead.\n"))
	})
})

var _ = Describe("kubectl nas rollout restart, pause, resume", Serial, func() {
	var s *scenario
	BeforeEach(func() {
		s = newScenario()
		s.createSet("agent", "example.com/agent:1")
	})

	It("restarts through a template annotation", func() {
		before := time.Now().Add(-time.Second)
		r := s.run("rollout", "restart", "agent")
		Expect(r).To(Equal(result{out: "nodeagentset.apps.nodeagentset.io/agent restarted\n"}))
		at, err := time.Parse(time.RFC3339, s.getSet("agent").Spec.Template.Annotations[plugin.RestartedAtAnnotation])
		Expect(err).NotTo(HaveOccurred())
		Expect(at).To(BeTemporally(">=", before.Truncate(time.Second)))
	})

	It("pauses and resumes", func() {
		r := s.run("rollout", "pause", "agent")
		Expect(r).To(Equal(result{out: "nodeagentset.apps.nodeagentset.io/agent paused\n"}))
		set := s.getSet("agent")
		Expect(set.Spec.UpdateStrategy.RollingUpdate.Paused).To(BeTrue())
		Expect(set.Spec.UpdateStrategy.RollingUpdate.MaxUnavailable).To(Equal(ptr.To(intstr.FromInt32(1))), "the rest of rollingUpdate is kept")

		r = s.run("rollout", "pause", "agent")
		Expect(r).To(Equal(result{err: `error: nodeagentsets.apps.nodeagentset.io "agent" is already paused` + "\n", code: 1}))
		r = s.run("rollout", "restart", "agent")
		Expect(r).To(Equal(result{
			err:  `error: nodeagentsets.apps.nodeagentset.io "agent" can't restart paused node agent set (run rollout resume first)` + "\n",
			code: 1,
		}))

		r = s.run("rollout", "resume", "agent")
		Expect(r).To(Equal(result{out: "nodeagentset.apps.nodeagentset.io/agent resumed\n"}))
		Expect(s.getSet("agent").Spec.UpdateStrategy.RollingUpdate.Paused).To(BeFalse())
		r = s.run("rollout", "resume", "agent")
		Expect(r).To(Equal(result{err: `error: nodeagentsets.apps.nodeagentset.io "agent" is not paused` + "\n", code: 1}))
	})

	It("refuses to pause an OnDelete set", func() {
		s.updateSet("agent", func(set *nasv1alpha1.NodeAgentSet) {
			set.Spec.UpdateStrategy = nasv1alpha1.NodeAgentSetUpdateStrategy{Type: nasv1alpha1.OnDeleteStrategyType}
		})
		r := s.run("rollout", "pause", "agent")
		Expect(r.code).To(Equal(1))
		Expect(r.err).To(Equal(`error: nodeagentsets.apps.nodeagentset.io "agent" pausing is not supported for the OnDelete update strategy: ` +
			"only RollingUpdate rollouts can be paused\n"))
	})

	It("fails on an unknown set", func() {
		for _, sub := range []string{"restart", "pause", "resume"} {
			r := s.run("rollout", sub, "nope")
			Expect(r).To(Equal(result{err: `Error from server (NotFound): nodeagentsets.apps.nodeagentset.io "nope" not found` + "\n", code: 1}), sub)
		}
	})

	It("requires a name", func() {
		r := s.run("rollout", "status")
		Expect(r).To(Equal(result{err: "error: NAME is required\n", code: 1}))
	})
})
