package validation

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
)

// Messages and fields of the rules on the rollout controls: partition, paused and
// progressDeadlineSeconds.
const (
	msgMinimumOne  = "should be greater than or equal to 1"
	msgBoolean     = "must be of type boolean"
	msgInteger     = "must be of type integer"
	fieldPartition = "spec.updateStrategy.rollingUpdate.partition"
	fieldPaused    = "spec.updateStrategy.rollingUpdate.paused"
	fieldDeadline  = "spec.progressDeadlineSeconds"
)

// withRollout sets updateStrategy.rollingUpdate to the default budget (maxUnavailable 1) plus
// partition and paused.
func withRollout(partition *intstr.IntOrString, paused bool) mutation {
	return func(n *nasv1alpha1.NodeAgentSet) {
		n.Spec.UpdateStrategy.RollingUpdate = &nasv1alpha1.RollingUpdateNodeAgentSet{
			MaxUnavailable: num(1), Partition: partition, Paused: paused,
		}
	}
}

func withDeadline(seconds int32) mutation {
	return func(n *nasv1alpha1.NodeAgentSet) { n.Spec.ProgressDeadlineSeconds = ptr.To(seconds) }
}

// rawRollingUpdate writes spec.updateStrategy.rollingUpdate as JSON.
func rawRollingUpdate(rollingUpdate map[string]any) func(spec map[string]any) {
	return func(spec map[string]any) {
		spec["updateStrategy"] = map[string]any{"type": "RollingUpdate", "rollingUpdate": rollingUpdate}
	}
}

var _ = Describe("NodeAgentSet CRD validation of the rollout controls", func() {
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
		Entry("partition 0 is accepted", withRollout(num(0), false), accepted),
		Entry("partition 2 is accepted", withRollout(num(2), false), accepted),
		Entry("partition 0% is accepted", withRollout(str("0%"), false), accepted),
		Entry("partition 50% is accepted", withRollout(str("50%"), false), accepted),
		Entry("partition 100% is accepted", withRollout(str("100%"), false), accepted),
		Entry("partition with a surge budget is accepted",
			func(n *nasv1alpha1.NodeAgentSet) {
				n.Spec.UpdateStrategy.RollingUpdate = &nasv1alpha1.RollingUpdateNodeAgentSet{MaxUnavailable: num(0), MaxSurge: num(1), Partition: num(1)}
			}, accepted),
		Entry("partition alone, without maxUnavailable or maxSurge, is accepted",
			func(n *nasv1alpha1.NodeAgentSet) {
				n.Spec.UpdateStrategy.RollingUpdate = &nasv1alpha1.RollingUpdateNodeAgentSet{Partition: num(3)}
			}, accepted),
		Entry("partition -1 is rejected", withRollout(num(-1), false), rejected(fieldPartition, msgIntOrPercent)),
		Entry("partition 101% is rejected", withRollout(str("101%"), false), rejected(fieldPartition, msgIntOrPercent)),
		Entry("partition abc is rejected", withRollout(str("abc"), false), rejected(fieldPartition, msgIntOrPercent)),
		Entry("partition \"5\" (no %) is rejected", withRollout(str("5"), false), rejected(fieldPartition, msgIntOrPercent)),
		Entry("partition -5% is rejected", withRollout(str("-5%"), false), rejected(fieldPartition, msgIntOrPercent)),
		Entry("partition 05% is rejected", withRollout(str("05%"), false), rejected(fieldPartition, msgIntOrPercent)),
		Entry("paused true is accepted", withRollout(nil, true), accepted),
		Entry("paused with a partition is accepted", withRollout(num(1), true), accepted),
		Entry("progressDeadlineSeconds 1 is accepted", withDeadline(1), accepted),
		Entry("progressDeadlineSeconds 3600 is accepted", withDeadline(3600), accepted),
		Entry("progressDeadlineSeconds 0 is rejected", withDeadline(0), rejected(fieldDeadline, msgMinimumOne)),
		Entry("progressDeadlineSeconds -1 is rejected", withDeadline(-1), rejected(fieldDeadline, msgMinimumOne)),
	)

	DescribeTable("creating a NodeAgentSet written as JSON",
		func(edit func(spec map[string]any), want outcome) {
			expectOutcome(k8sClient.Create(ctx, rawNAS(ns, edit)), want)
		},
		Entry("paused false is accepted", rawRollingUpdate(map[string]any{"paused": false}), accepted),
		Entry("paused as a string is rejected", rawRollingUpdate(map[string]any{"paused": "true"}), rejected(fieldPaused, msgBoolean)),
		Entry("paused as a number is rejected", rawRollingUpdate(map[string]any{"paused": 1}), rejected(fieldPaused, msgBoolean)),
		Entry("partition as a number written as a string is rejected",
			rawRollingUpdate(map[string]any{"partition": "2"}), rejected(fieldPartition, msgIntOrPercent)),
		Entry("partition as a fraction is rejected", rawRollingUpdate(map[string]any{"partition": 1.5}), rejected(fieldPartition, msgInteger)),
		Entry("progressDeadlineSeconds as a string is rejected",
			func(spec map[string]any) { spec["progressDeadlineSeconds"] = "600" }, rejected(fieldDeadline, msgInteger)),
	)

	Describe("defaults", func() {
		It("fill progressDeadlineSeconds with 600 and leave partition and paused out", func() {
			u := rawNAS(ns, nil)
			Expect(k8sClient.Create(ctx, u)).To(Succeed())
			stored := getRaw(ns, u.GetName())
			deadline, found, err := unstructured.NestedInt64(stored.Object, "spec", "progressDeadlineSeconds")
			Expect(err).NotTo(HaveOccurred())
			Expect(found).To(BeTrue())
			Expect(deadline).To(BeEquivalentTo(600))
			rollingUpdate, found, err := unstructured.NestedMap(stored.Object, "spec", "updateStrategy", "rollingUpdate")
			Expect(err).NotTo(HaveOccurred())
			Expect(found).To(BeTrue())
			Expect(rollingUpdate).To(Equal(map[string]any{"maxUnavailable": int64(1), "maxSurge": int64(0)}))
		})

		It("keep an explicit progressDeadlineSeconds", func() {
			n := newNAS(ns)
			withDeadline(30)(n)
			Expect(k8sClient.Create(ctx, n)).To(Succeed())
			Expect(getTyped(ns, n.Name).Spec.ProgressDeadlineSeconds).To(Equal(ptr.To[int32](30)))
		})

		It("inject nothing next to a partition", func() {
			u := rawNAS(ns, rawRollingUpdate(map[string]any{"partition": "25%"}))
			Expect(k8sClient.Create(ctx, u)).To(Succeed())
			rollingUpdate, found, err := unstructured.NestedMap(getRaw(ns, u.GetName()).Object, "spec", "updateStrategy", "rollingUpdate")
			Expect(err).NotTo(HaveOccurred())
			Expect(found).To(BeTrue())
			Expect(rollingUpdate).To(Equal(map[string]any{"partition": "25%"}))
			Expect(getTyped(ns, u.GetName()).Spec.UpdateStrategy.RollingUpdate).To(Equal(&nasv1alpha1.RollingUpdateNodeAgentSet{Partition: str("25%")}))
		})
	})

	Describe("updating a NodeAgentSet", func() {
		It("accepts lowering the partition, pausing and resuming, and still checks each field", func() {
			n := newNAS(ns)
			withRollout(num(3), true)(n)
			Expect(k8sClient.Create(ctx, n)).To(Succeed())

			n.Spec.UpdateStrategy.RollingUpdate.Partition = num(1)
			n.Spec.UpdateStrategy.RollingUpdate.Paused = false
			Expect(k8sClient.Update(ctx, n)).To(Succeed())
			got := getTyped(ns, n.Name)
			Expect(got.Spec.UpdateStrategy.RollingUpdate).To(Equal(&nasv1alpha1.RollingUpdateNodeAgentSet{MaxUnavailable: num(1), Partition: num(1)}))

			got.Spec.UpdateStrategy.RollingUpdate.Partition = str("abc")
			expectRejected(k8sClient.Update(ctx, got), fieldPartition, msgIntOrPercent)
			got.Spec.UpdateStrategy.RollingUpdate.Partition = num(0)
			got.Spec.ProgressDeadlineSeconds = ptr.To[int32](0)
			expectRejected(k8sClient.Update(ctx, got), fieldDeadline, msgMinimumOne)
		})
	})

	Describe("the status subresource", func() {
		It("stores updateRevision and currentRevision written through /status, and ignores them in spec updates", func() {
			n := newNAS(ns)
			Expect(k8sClient.Create(ctx, n)).To(Succeed())

			n.Status.UpdateRevision = "7c9d8b6f5"
			n.Status.CurrentRevision = "5b4c7d8f9"
			Expect(k8sClient.Status().Update(ctx, n)).To(Succeed())
			got := getTyped(ns, n.Name)
			Expect(got.Status.UpdateRevision).To(Equal("7c9d8b6f5"))
			Expect(got.Status.CurrentRevision).To(Equal("5b4c7d8f9"))

			// A merge patch of /status changes one and keeps the other.
			Expect(k8sClient.Status().Patch(ctx, got, client.RawPatch(types.MergePatchType,
				[]byte(`{"status":{"currentRevision":"7c9d8b6f5"}}`)))).To(Succeed())
			got = getTyped(ns, n.Name)
			Expect(got.Status.UpdateRevision).To(Equal("7c9d8b6f5"))
			Expect(got.Status.CurrentRevision).To(Equal("7c9d8b6f5"))

			// A write of the main resource leaves them alone.
			got.Status.UpdateRevision = "other"
			got.Status.CurrentRevision = ""
			got.Spec.ProgressDeadlineSeconds = ptr.To[int32](120)
			Expect(k8sClient.Update(ctx, got)).To(Succeed())
			again := getTyped(ns, n.Name)
			Expect(again.Spec.ProgressDeadlineSeconds).To(Equal(ptr.To[int32](120)))
			Expect(again.Status.UpdateRevision).To(Equal("7c9d8b6f5"))
			Expect(again.Status.CurrentRevision).To(Equal("7c9d8b6f5"))
			Expect(again.Generation).To(BeNumerically(">", n.Generation))
		})

		It("checks the rest of the status schema on the same write", func() {
			n := newNAS(ns)
			Expect(k8sClient.Create(ctx, n)).To(Succeed())
			n.Status.UpdateRevision = "7c9d8b6f5"
			n.Status.Conditions = []metav1.Condition{{
				Type: nasv1alpha1.ConditionProgressing, Status: "Stuck", Reason: nasv1alpha1.ReasonProgressDeadlineExceeded, LastTransitionTime: metav1.Now(),
			}}
			expectRejected(k8sClient.Status().Update(ctx, n), "status.conditions[0].status", `supported values: "True", "False", "Unknown"`)
			Expect(getTyped(ns, n.Name).Status.UpdateRevision).To(BeEmpty())
		})
	})
})
