package validation

import (
	"strings"

	. "github.com/onsi/ginkgo/v2"
)

// Values the schema must refuse because the controller cannot read them: an integer above int32 in an
// int-or-percent field, or a canary duration beyond time.Duration, fails to decode in the controller's
// informer, which then lists no set at all (found by the random specifications of
// test/integration/controller). Each is refused on its field; the largest value that fits is accepted.
var _ = Describe("NodeAgentSet CRD validation of values the controller must be able to read", func() {
	var ns string

	BeforeEach(func() {
		ns = newNamespace()
	})

	const (
		tooBig      = 2147483648
		largest     = 2147483647
		msgTooBig   = msgIntOrPercent + " (an integer is at most 2147483647)"
		msgNodesBig = msgCanaryNodes + " (an integer is at most 2147483647)"
	)
	continuous := func(maxTainted any) func(spec map[string]any) {
		return func(spec map[string]any) {
			spec["nodeReadinessGate"] = map[string]any{"taintKey": "readiness.nodeagentset.io/agent", "mode": "Continuous", "maxTaintedNodes": maxTainted}
		}
	}

	DescribeTable("creating a NodeAgentSet written as JSON",
		func(edit func(spec map[string]any), want outcome) {
			expectOutcome(k8sClient.Create(ctx, rawNAS(ns, edit)), want)
		},
		Entry("maxUnavailable 2147483647 is accepted", rawRollingUpdate(map[string]any{"maxUnavailable": largest}), accepted),
		Entry("maxUnavailable 2147483648 is rejected", rawRollingUpdate(map[string]any{"maxUnavailable": tooBig}),
			rejected(fieldMaxUnavailable, msgTooBig)),
		Entry("maxSurge 3000000000 is rejected", rawRollingUpdate(map[string]any{"maxUnavailable": 0, "maxSurge": 3000000000}),
			rejected(fieldMaxSurge, msgTooBig)),
		Entry("partition 2147483647 is accepted", rawRollingUpdate(map[string]any{"partition": largest}), accepted),
		Entry("partition 5000000000 is rejected", rawRollingUpdate(map[string]any{"partition": 5000000000}),
			rejected(fieldPartition, msgTooBig)),
		Entry("maxTaintedNodes 2147483647 is accepted", continuous(largest), accepted),
		Entry("maxTaintedNodes 2147483648 is rejected", continuous(tooBig), rejected(fieldGateMaxTaint, msgTooBig)),
		Entry("canary nodes 2147483647 is accepted", rawCanary(map[string]any{"nodes": largest}), accepted),
		Entry("canary nodes 2147483648 is rejected", rawCanary(map[string]any{"nodes": tooBig}), rejected(fieldCanaryNodes, msgNodesBig)),
		Entry("minReadySeconds 2147483648 is rejected", func(spec map[string]any) { spec["minReadySeconds"] = tooBig },
			rejected("", "must be of type integer with format int32 in spec.minReadySeconds")),
		Entry("canary duration 99999h is accepted", rawCanary(map[string]any{"duration": "99999h"}), accepted),
		Entry("canary duration 99999.999999999h59m is accepted", rawCanary(map[string]any{"duration": "99999.999999999h59m"}), accepted),
		Entry("canary duration 100000000h (beyond time.Duration) is rejected", rawCanary(map[string]any{"duration": "100000000h"}),
			rejected(fieldCanaryDuration, msgCanaryDuration)),
		Entry("canary duration of more than 32 characters is rejected", rawCanary(map[string]any{"duration": strings.Repeat("99999h", 6)}),
			rejected(fieldCanaryDuration, "Too long: may not be more than 32 bytes")),
		Entry("canary duration with 10 decimals is rejected", rawCanary(map[string]any{"duration": "0.0000000001s"}),
			rejected(fieldCanaryDuration, msgCanaryDuration)),
	)
})
