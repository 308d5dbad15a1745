package validation

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
)

// Messages and fields of the unhealthy-node policy and the unavailability breakdown.
const (
	fieldUnhealthyNodePolicy = "spec.updateStrategy.rollingUpdate.unhealthyNodePolicy"
	msgUnhealthyNodePolicy   = `supported values: "Count", "Skip"`
)

func withUnhealthyNodePolicy(p nasv1alpha1.UnhealthyNodePolicy) mutation {
	return func(n *nasv1alpha1.NodeAgentSet) {
		n.Spec.UpdateStrategy.RollingUpdate = &nasv1alpha1.RollingUpdateNodeAgentSet{MaxUnavailable: num(1), UnhealthyNodePolicy: p}
	}
}

var _ = Describe("NodeAgentSet CRD validation of the unhealthy-node policy", func() {
	var ns string

	BeforeEach(func() {
		ns = newNamespace()
	})

	DescribeTable("creating a NodeAgentSet",
		func(m mutation, want outcome) {
			n := newNAS(ns)
			m(n)
			expectOutcome(k8sClient.Create(ctx, n), want)
		},
		Entry("unhealthyNodePolicy Count is accepted", withUnhealthyNodePolicy(nasv1alpha1.UnhealthyNodeCount), accepted),
		Entry("unhealthyNodePolicy Skip is accepted", withUnhealthyNodePolicy(nasv1alpha1.UnhealthyNodeSkip), accepted),
		Entry("unhealthyNodePolicy skip (lower case) is rejected", withUnhealthyNodePolicy("skip"),
			rejected(fieldUnhealthyNodePolicy, msgUnhealthyNodePolicy)),
		Entry("unhealthyNodePolicy Ignore is rejected", withUnhealthyNodePolicy("Ignore"),
			rejected(fieldUnhealthyNodePolicy, msgUnhealthyNodePolicy)),
	)

	DescribeTable("creating a NodeAgentSet written as JSON",
		func(edit func(spec map[string]any), want outcome) {
			expectOutcome(k8sClient.Create(ctx, rawNAS(ns, edit)), want)
		},
		Entry("unhealthyNodePolicy with a surge budget is accepted",
			rawRollingUpdate(map[string]any{"maxSurge": 1, "maxUnavailable": 0, "unhealthyNodePolicy": "Skip"}), accepted),
		Entry("unhealthyNodePolicy as a boolean is rejected",
			rawRollingUpdate(map[string]any{"unhealthyNodePolicy": true}), rejected(fieldUnhealthyNodePolicy, "must be of type string")),
	)

	It("leaves unhealthyNodePolicy out when omitted (Count)", func() {
		u := rawNAS(ns, rawRollingUpdate(map[string]any{"maxUnavailable": 1}))
		Expect(k8sClient.Create(ctx, u)).To(Succeed())
		_, found, err := unstructured.NestedString(getRaw(ns, u.GetName()).Object, "spec", "updateStrategy", "rollingUpdate", "unhealthyNodePolicy")
		Expect(err).NotTo(HaveOccurred())
		Expect(found).To(BeFalse())
	})

	It("stores the breakdown through /status and caps its node lists", func() {
		n := newNAS(ns)
		Expect(k8sClient.Create(ctx, n)).To(Succeed())
		n.Status.UnavailableBreakdown = []nasv1alpha1.UnavailableReason{{Reason: "NodeNotReady", Count: 2, Nodes: []string{"a", "b"}}}
		n.Status.TopUnavailableReason = "NodeNotReady"
		n.Status.SkippedNodes = &nasv1alpha1.SkippedNodes{Count: 1, Nodes: []string{"a"}}
		Expect(k8sClient.Status().Update(ctx, n)).To(Succeed())
		got := getTyped(ns, n.Name)
		Expect(got.Status.UnavailableBreakdown).To(Equal(n.Status.UnavailableBreakdown))
		Expect(got.Status.SkippedNodes).To(Equal(n.Status.SkippedNodes))

		got.Status.UnavailableBreakdown[0].Nodes = []string{"a", "b", "c", "d", "e", "f"}
		expectRejected(k8sClient.Status().Update(ctx, got), "status.unavailableBreakdown[0].nodes", "must have at most 5 items")
	})
})
