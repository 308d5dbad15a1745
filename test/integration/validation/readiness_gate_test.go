package validation

import (
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
)

// Messages and fields of the rules on spec.nodeReadinessGate.
const (
	fieldGate          = "spec.nodeReadinessGate"
	fieldGateKey       = "spec.nodeReadinessGate.taintKey"
	fieldGateEffect    = "spec.nodeReadinessGate.effect"
	fieldGateGrace     = "spec.nodeReadinessGate.gracePeriodSeconds"
	fieldGateMaxTaint  = "spec.nodeReadinessGate.maxTaintedNodes"
	msgGateKey         = "taintKey must be a qualified name"
	msgGateContinuous  = "mode Continuous puts the taint back with effect NoSchedule only"
	msgGateGraceOnly   = "gracePeriodSeconds applies only to mode Continuous"
	msgGateMaxOnly     = "maxTaintedNodes applies only to mode Continuous"
	msgGateModeValues  = `supported values: "Bootstrap", "Continuous"`
	msgGateEffectValue = `supported values: "NoSchedule", "NoExecute"`
)

func withGate(key string, mode nasv1alpha1.NodeReadinessGateMode, mutate ...func(*nasv1alpha1.NodeReadinessGate)) mutation {
	return func(n *nasv1alpha1.NodeAgentSet) {
		g := &nasv1alpha1.NodeReadinessGate{TaintKey: key, Mode: mode}
		for _, m := range mutate {
			m(g)
		}
		n.Spec.NodeReadinessGate = g
	}
}

func gateEffect(e corev1.TaintEffect) func(*nasv1alpha1.NodeReadinessGate) {
	return func(g *nasv1alpha1.NodeReadinessGate) { g.Effect = e }
}

func gateGrace(s int32) func(*nasv1alpha1.NodeReadinessGate) {
	return func(g *nasv1alpha1.NodeReadinessGate) { g.GracePeriodSeconds = ptr.To(s) }
}

var _ = Describe("NodeAgentSet CRD validation of the node readiness gate", func() {
	var ns string

	BeforeEach(func() {
		ns = newNamespace()
	})

	const key = "readiness.nodeagentset.io/log-collector"
	DescribeTable("creating a NodeAgentSet",
		func(m mutation, want outcome) {
			n := newNAS(ns)
			m(n)
			expectOutcome(k8sClient.Create(ctx, n), want)
		},
		Entry("a Bootstrap gate is accepted", withGate(key, nasv1alpha1.BootstrapGateMode), accepted),
		Entry("a key without a prefix is accepted by the schema", withGate("agent-not-ready", ""), accepted),
		Entry("a Bootstrap gate on NoExecute taints is accepted", withGate(key, "", gateEffect(corev1.TaintEffectNoExecute)), accepted),
		Entry("a Continuous gate with grace and budget is accepted",
			withGate(key, nasv1alpha1.ContinuousGateMode, gateGrace(0), func(g *nasv1alpha1.NodeReadinessGate) { g.MaxTaintedNodes = str("10%") }),
			accepted),
		Entry("a Continuous gate with effect NoSchedule is accepted",
			withGate(key, nasv1alpha1.ContinuousGateMode, gateEffect(corev1.TaintEffectNoSchedule)), accepted),
		Entry("an empty key is rejected", withGate("", ""), rejected(fieldGateKey, "should be at least 1 chars long")),
		Entry("a key with a space is rejected", withGate("readiness.nodeagentset.io/log collector", ""), rejected(fieldGateKey, msgGateKey)),
		Entry("a key with two slashes is rejected", withGate("a/b/c", ""), rejected(fieldGateKey, msgGateKey)),
		Entry("a key with an uppercase prefix is rejected", withGate("Readiness.io/x", ""), rejected(fieldGateKey, msgGateKey)),
		Entry("a key ending in '-' is rejected", withGate("readiness.nodeagentset.io/x-", ""), rejected(fieldGateKey, msgGateKey)),
		Entry("a key with an empty name is rejected", withGate("readiness.nodeagentset.io/", ""), rejected(fieldGateKey, msgGateKey)),
		Entry("a name of 64 characters is rejected", withGate("readiness.nodeagentset.io/"+strings.Repeat("a", 64), ""),
			rejected(fieldGateKey, msgGateKey)),
		Entry("a mode other than Bootstrap and Continuous is rejected", withGate(key, "Always"), rejected(fieldGate+".mode", msgGateModeValues)),
		Entry("an effect PreferNoSchedule is rejected", withGate(key, "", gateEffect(corev1.TaintEffectPreferNoSchedule)),
			rejected(fieldGateEffect, msgGateEffectValue)),
		Entry("Continuous with NoExecute is rejected", withGate(key, nasv1alpha1.ContinuousGateMode, gateEffect(corev1.TaintEffectNoExecute)),
			rejected(fieldGateEffect, msgGateContinuous)),
		Entry("gracePeriodSeconds with Bootstrap is rejected", withGate(key, nasv1alpha1.BootstrapGateMode, gateGrace(30)),
			rejected(fieldGateGrace, msgGateGraceOnly)),
		Entry("maxTaintedNodes with Bootstrap is rejected",
			withGate(key, "", func(g *nasv1alpha1.NodeReadinessGate) { g.MaxTaintedNodes = num(1) }), rejected(fieldGateMaxTaint, msgGateMaxOnly)),
		Entry("a negative gracePeriodSeconds is rejected", withGate(key, nasv1alpha1.ContinuousGateMode, gateGrace(-1)),
			rejected(fieldGateGrace, msgMinimumZero)),
		Entry("maxTaintedNodes 101% is rejected",
			withGate(key, nasv1alpha1.ContinuousGateMode, func(g *nasv1alpha1.NodeReadinessGate) { g.MaxTaintedNodes = str("101%") }),
			rejected(fieldGateMaxTaint, msgIntOrPercent)),
		Entry("maxTaintedNodes -1 is rejected",
			withGate(key, nasv1alpha1.ContinuousGateMode, func(g *nasv1alpha1.NodeReadinessGate) { g.MaxTaintedNodes = num(-1) }),
			rejected(fieldGateMaxTaint, msgIntOrPercent)),
	)

	It("defaults the mode to Bootstrap", func() {
		n := newNAS(ns)
		withGate(key, "")(n)
		Expect(k8sClient.Create(ctx, n)).To(Succeed())
		Expect(n.Spec.NodeReadinessGate.Mode).To(Equal(nasv1alpha1.BootstrapGateMode))
	})
})
