package plugin

import (
	"encoding/json"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
	"github.com/nodeagentset/nodeagentset/internal/planner"
	"github.com/nodeagentset/nodeagentset/internal/plugin"
)

var _ = Describe("kubectl nas nodes and why, with a readiness gate", Serial, func() {
	const key = "readiness.nodeagentset.io/agent"
	var s *scenario
	BeforeEach(func() { s = newScenario() })

	It("show each node's gate as the planner sees it, and a refused key as refused", func() {
		set := s.createSet("agent", "example.com/agent:1", func(set *nasv1alpha1.NodeAgentSet) {
			set.Spec.Template.Spec.NodeSelector = map[string]string{"pool": "general"}
			set.Spec.NodeReadinessGate = &nasv1alpha1.NodeReadinessGate{TaintKey: key}
		})
		cur := s.addRevision(set, 1, "")
		general := withLabels("pool", "general")
		s.addNode("worker-1", general, withTaint(key, "", corev1.TaintEffectNoSchedule))
		s.addNode("worker-2", general)
		s.addNode("infra-1", withLabels("pool", "infra"), withTaint(key, "", corev1.TaintEffectNoSchedule))
		s.addPod(set, "worker-1", cur, notReadyPod())
		s.addPod(set, "worker-2", cur)

		r := s.run("nodes", "agent")
		Expect(r.code).To(Equal(0), r.err)
		ls := lines(r.out)
		Expect(columns(ls[0])).To(Equal([]string{"NODE", "ELIGIBLE", "POD", "REVISION", "READY", "AVAILABLE", "AGE", "GATE", "REASON"}))
		waiting := planner.GateNode{Code: planner.GateWaiting}.String()
		Expect(ls[1]).To(HavePrefix("infra-1"))
		Expect(columns(ls[1])).To(ContainElement("-"))
		Expect(ls[2]).To(HavePrefix("worker-1"))
		Expect(columns(ls[2])).To(ContainElement(waiting))
		Expect(ls[3]).To(HavePrefix("worker-2"))
		Expect(columns(ls[3])).To(ContainElement("open"))

		r = s.run("nodes", "agent", "-o", "json")
		var list plugin.NodeReportList
		Expect(json.Unmarshal([]byte(r.out), &list)).To(Succeed())
		Expect(list.Items).To(ContainElement(And(HaveField("Metadata.Name", "worker-1"), HaveField("GateCode", planner.GateWaiting))))

		r = s.run("why", "agent", "worker-1")
		Expect(r.code).To(Equal(0), r.err)
		Expect(r.out).To(ContainSubstring("Readiness gate " + key + " (Bootstrap): " + waiting + "."))

		By("the controller refused the key")
		s.setStatus("agent", func(st *nasv1alpha1.NodeAgentSetStatus) {
			st.Conditions = []metav1.Condition{{Type: nasv1alpha1.ConditionNodeReadinessGate, Status: metav1.ConditionFalse,
				Reason: nasv1alpha1.ReasonGateKeyConflict, Message: "older", LastTransitionTime: metav1.Now()}}
		})
		r = s.run("nodes", "agent")
		Expect(columns(lines(r.out)[2])).To(ContainElement("refused: " + string(planner.GateKeyConflict)))
	})
})
