package controller

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
)

// A selector the schema cannot check (docs/validation.md): an In requirement of more than 8 values, or
// a key that is no label key. Found by the random specifications: the controller created pods its
// selector did not match, for ever, and raised collisionCount on every pass (or, with a bad key,
// failed every pass and never wrote a status).
var _ = Describe("A set whose selector cannot own its template's pods", func() {
	many := []string{"v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8"}
	DescribeTable("is reported as SelectorMismatch, and no pod is created",
		func(req metav1.LabelSelectorRequirement, label, want string) {
			s := newScenario()
			s.addNodes(2)
			k := s.kubelet()
			s.createSet("agent", func(set *nasv1alpha1.NodeAgentSet) {
				set.Spec.Selector.MatchExpressions = []metav1.LabelSelectorRequirement{req}
				set.Spec.Template.Labels[req.Key] = label
			})
			k.eventually(func(g Gomega) {
				set := s.getSet("agent")
				g.Expect(set.Status.ObservedGeneration).To(Equal(set.Generation))
				cond := condition(set, nasv1alpha1.ConditionPodTemplateValid)
				g.Expect(cond).NotTo(BeNil())
				g.Expect(cond.Status).To(Equal(metav1.ConditionFalse))
				g.Expect(cond.Reason).To(Equal(nasv1alpha1.ReasonSelectorMismatch))
				g.Expect(cond.Message).To(ContainSubstring(want))
			})
			k.consistently(2*time.Second, func(g Gomega) {
				g.Expect(s.pods()).To(BeEmpty())
				g.Expect(s.getSet("agent").Status.CollisionCount).To(BeNil())
			})
		},
		Entry("an In of 9 values, none the template's", metav1.LabelSelectorRequirement{Key: "tier", Operator: metav1.LabelSelectorOpIn, Values: many}, "zz",
			"selector does not match template labels: app=agent,tier in (v0,v1,v2,v3,v4,v5,v6,v7,v8) does not select app=agent,tier=zz"),
		Entry("a key that is no label key", metav1.LabelSelectorRequirement{Key: "bad key!", Operator: metav1.LabelSelectorOpExists}, "x",
			`selector is invalid: key: Invalid value: "bad key!"`),
	)

	It("runs its pods once the template's labels match again", func() {
		s := newScenario()
		s.addNodes(2)
		k := s.kubelet()
		s.createSet("agent", func(set *nasv1alpha1.NodeAgentSet) {
			set.Spec.Selector.MatchExpressions = []metav1.LabelSelectorRequirement{{Key: "tier", Operator: metav1.LabelSelectorOpIn, Values: many}}
			set.Spec.Template.Labels["tier"] = "zz"
		})
		k.eventually(func(g Gomega) {
			g.Expect(condition(s.getSet("agent"), nasv1alpha1.ConditionPodTemplateValid)).To(HaveField("Reason", nasv1alpha1.ReasonSelectorMismatch))
		})
		s.updateSet(func(set *nasv1alpha1.NodeAgentSet) { set.Spec.Template.Labels["tier"] = "v8" })
		k.eventually(func(g Gomega) {
			g.Expect(s.nodesWithPods(g)).To(Equal([]string{"node-0", "node-1"}))
			set := s.getSet("agent")
			g.Expect(set.Status.ObservedGeneration).To(Equal(set.Generation))
			g.Expect(condition(set, nasv1alpha1.ConditionPodTemplateValid)).To(HaveField("Reason", nasv1alpha1.ReasonPodTemplateAccepted))
			g.Expect(set.Status.NumberAvailable).To(Equal(int32(2)))
		})
	})
})
