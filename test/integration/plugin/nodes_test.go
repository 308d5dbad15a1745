package plugin

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
	"github.com/nodeagentset/nodeagentset/internal/planner"
	"github.com/nodeagentset/nodeagentset/internal/plugin"
)

// table parses `kubectl nas nodes` output into rows of columns, with AGE (column 7) checked and blanked.
func table(out string) [][]string {
	GinkgoHelper()
	var rows [][]string
	for i, line := range lines(out) {
		cols := columns(line)
		if i == 0 {
			Expect(cols).To(Equal([]string{"NODE", "ELIGIBLE", "POD", "REVISION", "READY", "AVAILABLE", "AGE", "REASON"}))
			continue
		}
		if len(cols) >= 7 && cols[6] != "-" {
			Expect(cols[6]).To(MatchRegexp(`^\d+s$`), "AGE of %s", cols[0])
			cols[6] = "AGE"
		}
		rows = append(rows, cols)
	}
	return rows
}

var _ = Describe("kubectl nas nodes", Serial, func() {
	var s *scenario
	BeforeEach(func() { s = newScenario() })

	It("shows every node with the set's verdict and its agent pod", func() {
		set := s.createSet("agent", "example.com/agent:1", func(set *nasv1alpha1.NodeAgentSet) {
			set.Spec.Template.Spec.NodeSelector = map[string]string{"pool": "general"}
		})
		old := s.addRevision(set, 1, "")
		set = s.updateSet("agent", setImage("example.com/agent:2"))
		cur := s.addRevision(set, 2, "")
		general := withLabels("pool", "general")
		s.addNode("worker-1", general)
		s.addNode("worker-2", general)
		s.addNode("worker-3", general)
		s.addNode("worker-4", general)
		s.addNode("gpu-1", general, withTaint("dedicated", "gpu", corev1.TaintEffectNoSchedule))
		s.addNode("infra-1", withLabels("pool", "infra"))
		s.addPod(set, "worker-1", cur)
		s.addPod(set, "worker-2", old)
		crash := s.addPod(set, "worker-3", cur, waiting("CrashLoopBackOff", "back-off 5m0s restarting failed container=agent", 7))
		kept := s.addPod(set, "gpu-1", old)
		s.computeStatus("agent", cur, false)

		r := s.run("nodes", "agent")
		Expect(r.code).To(Equal(0))
		Expect(r.err).To(BeEmpty())
		Expect(table(r.out)).To(Equal([][]string{
			{"gpu-1", "no: taint dedicated=gpu:NoSchedule", kept.Name, "1", "1/1", "yes", "AGE",
				"misscheduled: agent pod may stay (NoSchedule taint only)"},
			{"infra-1", "no: nodeSelector pool=general", "<none>", "-", "-", "-", "-"},
			{"worker-1", "yes", s.podOn("worker-1").Name, "2", "1/1", "yes", "AGE"},
			{"worker-2", "yes", s.podOn("worker-2").Name, "1", "1/1", "yes", "AGE", said(planner.ReasonWaitingForBudget)},
			{"worker-3", "yes", crash.Name, "2", "0/1", "no", "AGE", saidContainer(planner.ReasonCrashLoop, "CrashLoopBackOff")},
			{"worker-4", "yes", "<none>", "-", "-", "-", "-", said(planner.ReasonNoPod)},
		}))
		// Aligned: every column starts at the same offset on every line.
		ls := lines(r.out)
		for _, header := range []string{"ELIGIBLE", "POD", "REVISION", "READY", "AVAILABLE", "AGE", "REASON"} {
			offset := strings.Index(ls[0], header)
			for _, l := range ls[1:] {
				Expect(l[offset-3:offset]).To(Equal("   "), "column %s in %q", header, l)
			}
		}

		r = s.run("nodes", "agent", "-o", "json")
		Expect(r.code).To(Equal(0))
		var list plugin.NodeReportList
		Expect(json.Unmarshal([]byte(r.out), &list)).To(Succeed())
		Expect(list.Kind).To(Equal("List"))
		Expect(list.Items).To(HaveLen(6))
		byName := map[string]plugin.NodeReport{}
		for _, item := range list.Items {
			Expect(item.Kind).To(Equal("NodeAgentSetNode"))
			Expect(item.APIVersion).To(Equal("plugin.nodeagentset.io/v1alpha1"))
			Expect(item.NodeAgentSet).To(Equal(s.ns + "/agent"))
			byName[item.Metadata.Name] = item
		}
		Expect(byName["gpu-1"].Eligible).To(BeFalse())
		Expect(byName["gpu-1"].ShouldContinueRunning).To(BeTrue())
		Expect(byName["gpu-1"].Exclusion.Kind).To(BeEquivalentTo("TaintNotTolerated"))
		Expect(byName["gpu-1"].Exclusion.Detail).To(Equal("taint dedicated=gpu:NoSchedule"))
		Expect(byName["worker-1"].Healthy).To(BeTrue())
		Expect(byName["worker-1"].Pod.Updated).To(BeTrue())
		Expect(byName["worker-1"].Pod.Revision).To(BeEquivalentTo(2))
		Expect(byName["worker-1"].Pod.RevisionHash).To(Equal(cur))
		Expect(byName["worker-2"].Pod.Updated).To(BeFalse())
		Expect(byName["worker-3"].Healthy).To(BeFalse())
		Expect(byName["worker-3"].Pod.Problem).To(Equal("container agent: CrashLoopBackOff"))
		Expect(byName["worker-4"].Pod).To(BeNil())
		Expect(byName["worker-4"].Reason).To(Equal("no agent pod yet"))

		r = s.run("nodes", "agent", "-o", "yaml")
		Expect(r.code).To(Equal(0))
		Expect(r.out).To(HavePrefix("apiVersion: v1\nitems:\n"))
		var fromYAML plugin.NodeReportList
		Expect(yaml.Unmarshal([]byte(r.out), &fromYAML)).To(Succeed())
		Expect(fromYAML.Items).To(HaveLen(6))
	})

	It("says why old pods stay: OnDelete, pause, partition", func() {
		set := s.createSet("agent", "example.com/agent:1")
		old := s.addRevision(set, 1, "")
		set = s.updateSet("agent", setImage("example.com/agent:2"))
		s.addRevision(set, 2, "")
		for i := 1; i <= 4; i++ {
			s.addNode(fmt.Sprintf("worker-%d", i))
			s.addPod(set, fmt.Sprintf("worker-%d", i), old)
		}
		reasons := func() []string {
			r := s.run("nodes", "agent")
			Expect(r.code).To(Equal(0))
			rows := table(r.out)
			out := make([]string, 0, len(rows))
			for _, row := range rows {
				out = append(out, row[len(row)-1])
			}
			return out
		}
		s.updateSet("agent", func(set *nasv1alpha1.NodeAgentSet) {
			set.Spec.UpdateStrategy.RollingUpdate = &nasv1alpha1.RollingUpdateNodeAgentSet{Partition: ptr.To(intstr.FromInt32(1))}
		})
		Expect(reasons()).To(Equal([]string{
			"outdated: waiting for the rolling update", "outdated: waiting for the rolling update",
			"outdated: waiting for the rolling update", "outdated: in the rollout partition",
		}))
		s.updateSet("agent", func(set *nasv1alpha1.NodeAgentSet) { set.Spec.UpdateStrategy.RollingUpdate.Paused = true })
		Expect(reasons()).To(HaveEach("outdated: rollout paused"))
		s.updateSet("agent", func(set *nasv1alpha1.NodeAgentSet) {
			set.Spec.UpdateStrategy = nasv1alpha1.NodeAgentSetUpdateStrategy{Type: nasv1alpha1.OnDeleteStrategyType}
		})
		Expect(reasons()).To(HaveEach("outdated: OnDelete strategy, delete the pod to update it"))
	})

	It("shows a surge pod next to the old one", func() {
		set := s.createSet("agent", "example.com/agent:1")
		old := s.addRevision(set, 1, "")
		set = s.updateSet("agent", setImage("example.com/agent:2"))
		cur := s.addRevision(set, 2, "")
		s.addNode("worker-1")
		oldPod := s.addPod(set, "worker-1", old)
		time.Sleep(1100 * time.Millisecond) // creation timestamps have a one-second resolution.
		surge := s.addPod(set, "worker-1", cur, pending())
		rows := table(s.run("nodes", "agent").out)
		Expect(rows).To(Equal([][]string{{"worker-1", "yes", oldPod.Name + " (+1)", "1", "1/1", "yes", "AGE",
			"surge pod " + surge.Name + ": agent pod starting"}}))
	})

	It("fails on an unknown set and refuses other output formats", func() {
		r := s.run("nodes", "nope")
		Expect(r).To(Equal(result{err: `Error from server (NotFound): nodeagentsets.apps.nodeagentset.io "nope" not found` + "\n", code: 1}))
		s.createSet("agent", "example.com/agent:1")
		r = s.run("nodes", "agent", "-o", "wide")
		Expect(r).To(Equal(result{err: `error: unable to match a printer suitable for the output format "wide", allowed formats are: json,yaml` + "\n", code: 1}))
	})
})

// podOn returns the scenario's only pod on (or pinned to) a node.
func (s *scenario) podOn(node string) *corev1.Pod {
	GinkgoHelper()
	var list corev1.PodList
	Expect(k8s.List(ctx, &list)).To(Succeed())
	var found []*corev1.Pod
	for i := range list.Items {
		if target, _ := planner.TargetNodeName(&list.Items[i]); list.Items[i].Namespace == s.ns && target == node {
			found = append(found, &list.Items[i])
		}
	}
	Expect(found).To(HaveLen(1))
	return found[0]
}

var _ = Describe("kubectl nas nodes --problems", Serial, func() {
	It("lists only the nodes without an available agent, grouped by reason, and counts each reason", func() {
		s := newScenario()
		set := s.createSet("agent", "example.com/agent:1")
		cur := s.addRevision(set, 1, "")
		for _, n := range []string{"worker-1", "worker-2", "worker-3", "worker-4"} {
			s.addNode(n)
		}
		s.addNode("gpu-1", withTaint("dedicated", "gpu", corev1.TaintEffectNoSchedule))
		s.addPod(set, "worker-1", cur)
		crash := s.addPod(set, "worker-2", cur, waiting("CrashLoopBackOff", "back-off", 3))
		crash2 := s.addPod(set, "worker-4", cur, waiting("CrashLoopBackOff", "back-off", 1))
		notReady := s.addPod(set, "worker-3", cur, notReadyPod())

		r := s.run("nodes", "agent", "--problems")
		Expect(r.code).To(Equal(0))
		out := lines(r.out)
		Expect(out[len(out)-1]).To(Equal("Unavailable: 2 CrashLoop, 1 PodNotReady"))
		rows := table(strings.Join(out[:len(out)-1], "\n"))
		Expect(rows).To(HaveLen(3))
		Expect([]string{rows[0][0], rows[0][2], rows[1][0], rows[1][2], rows[2][0], rows[2][2]}).To(Equal([]string{
			"worker-2", crash.Name, "worker-4", crash2.Name, "worker-3", notReady.Name,
		}))
	})
})
