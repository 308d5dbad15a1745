package validation

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
)

// Messages and fields of the rules on rollingUpdate.canary.
const (
	fieldCanary            = "spec.updateStrategy.rollingUpdate.canary"
	fieldCanaryNodes       = fieldCanary + ".nodes"
	fieldCanaryDuration    = fieldCanary + ".duration"
	fieldCanaryMaxRestarts = fieldCanary + ".maxRestarts"
	fieldCanaryOnFailure   = fieldCanary + ".onFailure"
	fieldCanaryAutoPromote = fieldCanary + ".autoPromote"
	fieldCanarySelector    = fieldCanary + ".nodeSelector"
	fieldUpdateStrategy    = "spec.updateStrategy"
	msgCanaryNodes         = "must be a positive integer or a percentage from 1% to 100%"
	msgCanaryDuration      = "should match '^([0-9]{1,5}(\\.[0-9]{1,9})?(ms|s|m|h))+$'"
	msgOnFailure           = `supported values: "Pause", "Rollback"`
	msgCanaryOnDelete      = "rollingUpdate.canary requires type RollingUpdate"

	msgNodeSelectorOperator        = "nodeSelector.matchExpressions operator must be one of In, NotIn, Exists, DoesNotExist"
	msgNodeSelectorValuesNeeded    = "nodeSelector.matchExpressions with operator In or NotIn must have at least one value"
	msgNodeSelectorValuesForbidden = "nodeSelector.matchExpressions with operator Exists or DoesNotExist must not have values"
)

// rawCanary writes spec.updateStrategy as JSON: a RollingUpdate with maxUnavailable 1 and canary.
func rawCanary(canary map[string]any) func(spec map[string]any) {
	return rawRollingUpdate(map[string]any{"maxUnavailable": 1, "canary": canary})
}

var _ = Describe("NodeAgentSet CRD validation of the canary", func() {
	var ns string

	BeforeEach(func() {
		ns = newNamespace()
	})

	DescribeTable("creating a NodeAgentSet written as JSON",
		func(edit func(spec map[string]any), want outcome) {
			expectOutcome(k8sClient.Create(ctx, rawNAS(ns, edit)), want)
		},
		Entry("an empty canary is accepted", rawCanary(map[string]any{}), accepted),
		Entry("every field is accepted", rawCanary(map[string]any{
			"nodes": 2, "nodeSelector": map[string]any{"matchLabels": map[string]any{"canary": "true"}},
			"duration": "10m", "maxRestarts": 2, "onFailure": "Rollback", "autoPromote": false,
		}), accepted),
		Entry("nodes 50% is accepted", rawCanary(map[string]any{"nodes": "50%"}), accepted),
		Entry("nodes 100% is accepted", rawCanary(map[string]any{"nodes": "100%"}), accepted),
		Entry("nodes 0 is rejected", rawCanary(map[string]any{"nodes": 0}), rejected(fieldCanaryNodes, msgCanaryNodes)),
		Entry("nodes -1 is rejected", rawCanary(map[string]any{"nodes": -1}), rejected(fieldCanaryNodes, msgCanaryNodes)),
		Entry("nodes 0% is rejected", rawCanary(map[string]any{"nodes": "0%"}), rejected(fieldCanaryNodes, msgCanaryNodes)),
		Entry("nodes 101% is rejected", rawCanary(map[string]any{"nodes": "101%"}), rejected(fieldCanaryNodes, msgCanaryNodes)),
		Entry("nodes \"2\" (no %) is rejected", rawCanary(map[string]any{"nodes": "2"}), rejected(fieldCanaryNodes, msgCanaryNodes)),
		Entry("duration 1h30m is accepted", rawCanary(map[string]any{"duration": "1h30m"}), accepted),
		Entry("duration 5s is accepted", rawCanary(map[string]any{"duration": "5s"}), accepted),
		Entry("duration 1.5h is accepted", rawCanary(map[string]any{"duration": "1.5h"}), accepted),
		Entry("duration 10 minutes is rejected", rawCanary(map[string]any{"duration": "10 minutes"}),
			rejected(fieldCanaryDuration, msgCanaryDuration)),
		Entry("duration without a unit is rejected", rawCanary(map[string]any{"duration": "600"}),
			rejected(fieldCanaryDuration, msgCanaryDuration)),
		Entry("duration -5m is rejected", rawCanary(map[string]any{"duration": "-5m"}), rejected(fieldCanaryDuration, msgCanaryDuration)),
		Entry("duration 1d is rejected", rawCanary(map[string]any{"duration": "1d"}), rejected(fieldCanaryDuration, msgCanaryDuration)),
		Entry("maxRestarts 0 is accepted", rawCanary(map[string]any{"maxRestarts": 0}), accepted),
		Entry("maxRestarts -1 is rejected", rawCanary(map[string]any{"maxRestarts": -1}), rejected(fieldCanaryMaxRestarts, msgMinimumZero)),
		Entry("onFailure Pause is accepted", rawCanary(map[string]any{"onFailure": "Pause"}), accepted),
		Entry("onFailure Delete is rejected", rawCanary(map[string]any{"onFailure": "Delete"}), rejected(fieldCanaryOnFailure, msgOnFailure)),
		Entry("autoPromote as a string is rejected", rawCanary(map[string]any{"autoPromote": "yes"}),
			rejected(fieldCanaryAutoPromote, msgBoolean)),
		Entry("a nodeSelector with matchExpressions is accepted", rawCanary(map[string]any{"nodeSelector": map[string]any{
			"matchExpressions": []any{map[string]any{"key": "canary", "operator": "Exists"}}}}), accepted),
		Entry("a nodeSelector operator that does not exist is rejected", rawCanary(map[string]any{"nodeSelector": map[string]any{
			"matchExpressions": []any{map[string]any{"key": "canary", "operator": "Equals", "values": []any{"true"}}}}}),
			rejected(fieldCanarySelector, msgNodeSelectorOperator)),
		Entry("a nodeSelector NotIn without values is rejected", rawCanary(map[string]any{"nodeSelector": map[string]any{
			"matchExpressions": []any{map[string]any{"key": "canary", "operator": "NotIn"}}}}),
			rejected(fieldCanarySelector, msgNodeSelectorValuesNeeded)),
		Entry("a nodeSelector DoesNotExist with values is rejected", rawCanary(map[string]any{"nodeSelector": map[string]any{
			"matchExpressions": []any{map[string]any{"key": "canary", "operator": "DoesNotExist", "values": []any{"x"}}}}}),
			rejected(fieldCanarySelector, msgNodeSelectorValuesForbidden)),
		Entry("a canary with the OnDelete strategy is rejected", func(spec map[string]any) {
			spec["updateStrategy"] = map[string]any{"type": "OnDelete", "rollingUpdate": map[string]any{"canary": map[string]any{}}}
		}, rejected(fieldUpdateStrategy, msgCanaryOnDelete)),
	)

	It("defaults duration, onFailure and autoPromote, and leaves nodes and maxRestarts out", func() {
		u := rawNAS(ns, rawCanary(map[string]any{}))
		Expect(k8sClient.Create(ctx, u)).To(Succeed())
		canary, found, err := unstructured.NestedMap(getRaw(ns, u.GetName()).Object, "spec", "updateStrategy", "rollingUpdate", "canary")
		Expect(err).NotTo(HaveOccurred())
		Expect(found).To(BeTrue())
		Expect(canary).To(Equal(map[string]any{"duration": "10m", "onFailure": "Pause", "autoPromote": true}))
	})

	It("stores status.canary written through /status", func() {
		n := newNAS(ns)
		Expect(k8sClient.Create(ctx, n)).To(Succeed())
		now := metav1.Now().Rfc3339Copy()
		n.Status.Canary = &nasv1alpha1.CanaryStatus{Revision: "h2", StableRevision: "h1", Phase: nasv1alpha1.CanaryWatching,
			StartedAt: &now, WatchStartedAt: &now, Nodes: []string{"n1", "n2"}, RestartBaseline: map[string]int32{"agent-x": 3},
			Restarts: 1, Message: "watching"}
		Expect(k8sClient.Status().Update(ctx, n)).To(Succeed())
		Expect(getTyped(ns, n.Name).Status.Canary).To(Equal(n.Status.Canary))
	})
})
