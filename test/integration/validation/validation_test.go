package validation

import (
	"encoding/json"
	"fmt"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
)

// The messages of the CRD's rules, as the API server returns them. A test fails when a rule's message
// changes: users and docs/validation.md rely on them.
const (
	msgSelectorEmpty           = "empty selector is invalid for a NodeAgentSet: set matchLabels or matchExpressions"
	msgSelectorOperator        = "selector.matchExpressions operator must be one of In, NotIn, Exists, DoesNotExist"
	msgSelectorValuesNeeded    = "selector.matchExpressions with operator In or NotIn must have at least one value"
	msgSelectorValuesForbidden = "selector.matchExpressions with operator Exists or DoesNotExist must not have values"
	msgSelectorImmutable       = "selector is immutable"

	msgMismatchPrefix     = "selector does not match template labels"
	msgMismatchLabelKey   = msgMismatchPrefix + ": every selector.matchLabels key must be in template.metadata.labels"
	msgMismatchLabelValue = msgMismatchPrefix + ": every selector.matchLabels value must equal template.metadata.labels at the same key"
	msgMismatchIn         = msgMismatchPrefix + ": for every selector.matchExpressions requirement with operator In," +
		" template.metadata.labels must have its key, with one of its values"
	msgMismatchNotIn = msgMismatchPrefix + ": for every selector.matchExpressions requirement with operator NotIn," +
		" template.metadata.labels must not have its key with one of its values"
	msgMismatchExists = msgMismatchPrefix + ": for every selector.matchExpressions requirement with operator Exists," +
		" template.metadata.labels must have its key"
	msgMismatchDoesNotExist = msgMismatchPrefix + ": for every selector.matchExpressions requirement with operator DoesNotExist," +
		" template.metadata.labels must not have its key"

	msgRestartPolicy  = "template.spec.restartPolicy must be Always (or omitted): agent pods are restarted in place"
	msgActiveDeadline = "template.spec.activeDeadlineSeconds is not supported: agent pods run until replaced; remove it"
	msgNoContainers   = "template.spec.containers must name at least one container"

	msgIntOrPercent = "must be a non-negative integer or a percentage from 0% to 100%"
	msgBothNonZero  = "maxSurge and maxUnavailable cannot both be non-zero: " +
		"to surge, set maxUnavailable: 0 (or omit maxUnavailable); otherwise set maxSurge: 0 (or omit maxSurge)"
	msgBothZero       = "maxUnavailable and maxSurge cannot both be 0: set maxUnavailable to at least 1 (or omit maxUnavailable), or set maxSurge to at least 1"
	msgMinimumZero    = "should be greater than or equal to 0"
	msgRequired       = "Required value"
	msgStrategyValues = `supported values: "RollingUpdate", "OnDelete"`
)

// Field paths of the errors (status causes) the rules report.
const (
	fieldSelector       = "spec.selector"
	fieldTemplateLabels = "spec.template.metadata.labels"
	fieldContainers     = "spec.template.spec.containers"
	fieldRestartPolicy  = "spec.template.spec.restartPolicy"
	fieldActiveDeadline = "spec.template.spec.activeDeadlineSeconds"
	fieldRollingUpdate  = "spec.updateStrategy.rollingUpdate"
	fieldMaxUnavailable = "spec.updateStrategy.rollingUpdate.maxUnavailable"
	fieldMaxSurge       = "spec.updateStrategy.rollingUpdate.maxSurge"
)

// outcome is what the API server must do with an object: accept it, or reject it with message (on
// field, when field is set).
type outcome struct {
	accept  bool
	field   string
	message string
}

var accepted = outcome{accept: true}

func rejected(field, message string) outcome { return outcome{field: field, message: message} }

// expectOutcome asserts err against want.
func expectOutcome(err error, want outcome) {
	GinkgoHelper()
	if want.accept {
		Expect(err).NotTo(HaveOccurred(), "the API server rejected a valid object")
		return
	}
	expectRejected(err, want.field, want.message)
}

// expectRejected asserts that err is the API server's Invalid error carrying message, and, when field
// is set, that one of its causes is on field with that message.
func expectRejected(err error, field, message string) {
	GinkgoHelper()
	Expect(err).To(HaveOccurred(), "the API server accepted an invalid object (want %q)", message)
	GinkgoWriter.Printf("rejected as wanted: %v\n", err)
	Expect(apierrors.IsInvalid(err)).To(BeTrue(), "want an Invalid error, got: %v", err)
	Expect(err.Error()).To(ContainSubstring(message))
	if field == "" {
		return
	}
	var causes []metav1.StatusCause
	if status, ok := err.(apierrors.APIStatus); ok && status.Status().Details != nil {
		causes = status.Status().Details.Causes
	}
	Expect(causes).To(ContainElement(And(
		HaveField("Field", field),
		HaveField("Message", ContainSubstring(message)),
	)), "no cause on %s with %q in: %v", field, message, err)
}

// newNamespace creates a namespace of its own for one test.
func newNamespace() string {
	GinkgoHelper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "nas-validation-"}}
	Expect(k8sClient.Create(ctx, ns)).To(Succeed())
	return ns.Name
}

// newNAS is the smallest valid NodeAgentSet: selector app=agent, one container.
func newNAS(ns string) *nasv1alpha1.NodeAgentSet {
	return &nasv1alpha1.NodeAgentSet{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "agent-", Namespace: ns},
		Spec: nasv1alpha1.NodeAgentSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "agent"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "agent"}},
				Spec: corev1.PodSpec{
					Containers: []corev1.Container{{Name: "agent", Image: "registry.example.com/agent:1.0"}},
				},
			},
		},
	}
}

// mutation changes the valid object of newNAS into the object under test.
type mutation func(*nasv1alpha1.NodeAgentSet)

func selector(matchLabels map[string]string, exprs ...metav1.LabelSelectorRequirement) mutation {
	return func(n *nasv1alpha1.NodeAgentSet) {
		n.Spec.Selector = &metav1.LabelSelector{MatchLabels: matchLabels, MatchExpressions: exprs}
	}
}

func templateLabels(labels map[string]string) mutation {
	return func(n *nasv1alpha1.NodeAgentSet) { n.Spec.Template.Labels = labels }
}

func req(key string, op metav1.LabelSelectorOperator, values ...string) metav1.LabelSelectorRequirement {
	return metav1.LabelSelectorRequirement{Key: key, Operator: op, Values: values}
}

func all(ms ...mutation) mutation {
	return func(n *nasv1alpha1.NodeAgentSet) {
		for _, m := range ms {
			m(n)
		}
	}
}

// rollingUpdate sets updateStrategy.rollingUpdate; nil leaves a field out.
func rollingUpdate(maxUnavailable, maxSurge *intstr.IntOrString) mutation {
	return func(n *nasv1alpha1.NodeAgentSet) {
		n.Spec.UpdateStrategy.RollingUpdate = &nasv1alpha1.RollingUpdateNodeAgentSet{
			MaxUnavailable: maxUnavailable,
			MaxSurge:       maxSurge,
		}
	}
}

func num(i int32) *intstr.IntOrString  { v := intstr.FromInt32(i); return &v }
func str(s string) *intstr.IntOrString { v := intstr.FromString(s); return &v }

func values(n int) []string {
	vs := make([]string, n)
	for i := range vs {
		vs[i] = fmt.Sprintf("v%d", i+1)
	}
	return vs
}

// rawNAS is a NodeAgentSet written as JSON, for what the typed client cannot send (a field left out
// entirely, a string where an integer belongs). spec starts as the spec of newNAS.
func rawNAS(ns string, edit func(spec map[string]any)) *unstructured.Unstructured {
	GinkgoHelper()
	spec := map[string]any{
		"selector": map[string]any{"matchLabels": map[string]any{"app": "agent"}},
		"template": map[string]any{
			"metadata": map[string]any{"labels": map[string]any{"app": "agent"}},
			"spec": map[string]any{
				"containers": []any{map[string]any{"name": "agent", "image": "registry.example.com/agent:1.0"}},
			},
		},
	}
	if edit != nil {
		edit(spec)
	}
	u := &unstructured.Unstructured{Object: map[string]any{"spec": spec}}
	u.SetGroupVersionKind(nasv1alpha1.GroupVersion.WithKind("NodeAgentSet"))
	u.SetNamespace(ns)
	u.SetGenerateName("raw-")
	return u
}

// getRaw reads a NodeAgentSet back as the API server stores it, to see which fields are present.
func getRaw(ns, name string) *unstructured.Unstructured {
	GinkgoHelper()
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(nasv1alpha1.GroupVersion.WithKind("NodeAgentSet"))
	Expect(k8sClient.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, u)).To(Succeed())
	return u
}

func getTyped(ns, name string) *nasv1alpha1.NodeAgentSet {
	GinkgoHelper()
	n := &nasv1alpha1.NodeAgentSet{}
	Expect(k8sClient.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, n)).To(Succeed())
	return n
}

var _ = Describe("NodeAgentSet CRD validation", func() {
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

		Entry("baseline: the smallest valid object is accepted", all(), accepted),

		// Rule 1: selector required and non-empty (immutability is tested on update below).
		Entry("rule 1 (selector required): a missing selector is rejected",
			func(n *nasv1alpha1.NodeAgentSet) { n.Spec.Selector = nil }, rejected(fieldSelector, msgRequired)),
		Entry("rule 1 (selector non-empty): an empty selector is rejected",
			selector(nil), rejected(fieldSelector, msgSelectorEmpty)),
		Entry("rule 1 (selector non-empty): empty matchLabels and matchExpressions are rejected",
			func(n *nasv1alpha1.NodeAgentSet) {
				n.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{}, MatchExpressions: []metav1.LabelSelectorRequirement{}}
			}, rejected(fieldSelector, msgSelectorEmpty)),
		Entry("rule 1 (selector non-empty): matchExpressions alone are enough",
			selector(nil, req("app", metav1.LabelSelectorOpExists)), accepted),
		Entry("rule 1 (selector operators): an unknown operator is rejected",
			selector(nil, req("app", "Equals", "agent")), rejected(fieldSelector, msgSelectorOperator)),
		Entry("rule 1 (selector operators): operators are case-sensitive",
			selector(nil, req("app", "in", "agent")), rejected(fieldSelector, msgSelectorOperator)),
		Entry("rule 1 (selector operators): In without values is rejected",
			selector(nil, req("app", metav1.LabelSelectorOpIn)), rejected(fieldSelector, msgSelectorValuesNeeded)),
		Entry("rule 1 (selector operators): NotIn without values is rejected",
			selector(nil, req("other", metav1.LabelSelectorOpNotIn)), rejected(fieldSelector, msgSelectorValuesNeeded)),
		Entry("rule 1 (selector operators): Exists with values is rejected",
			selector(nil, req("app", metav1.LabelSelectorOpExists, "agent")), rejected(fieldSelector, msgSelectorValuesForbidden)),
		Entry("rule 1 (selector operators): DoesNotExist with values is rejected",
			selector(nil, req("other", metav1.LabelSelectorOpDoesNotExist, "x")), rejected(fieldSelector, msgSelectorValuesForbidden)),

		// Rule 2: template labels satisfy the selector.
		Entry("rule 2 (matchLabels): extra template labels are fine",
			templateLabels(map[string]string{"app": "agent", "tier": "node"}), accepted),
		Entry("rule 2 (matchLabels): every key and value must match",
			all(selector(map[string]string{"app": "agent", "tier": "node"}), templateLabels(map[string]string{"app": "agent", "tier": "node", "x": "y"})), accepted),
		Entry("rule 2 (matchLabels): an empty value matches an empty label value",
			all(selector(map[string]string{"app": "agent", "canary": ""}), templateLabels(map[string]string{"app": "agent", "canary": ""})), accepted),
		Entry("rule 2 (matchLabels): a missing key is rejected",
			templateLabels(map[string]string{"tier": "node"}), rejected(fieldTemplateLabels, msgMismatchLabelKey)),
		Entry("rule 2 (matchLabels): a missing key with an empty selector value is rejected",
			all(selector(map[string]string{"app": "agent", "canary": ""}), templateLabels(map[string]string{"app": "agent"})),
			rejected(fieldTemplateLabels, msgMismatchLabelKey)),
		Entry("rule 2 (matchLabels): a template without labels is rejected",
			templateLabels(nil), rejected(fieldTemplateLabels, msgMismatchLabelKey)),
		Entry("rule 2 (matchLabels): a different value is rejected",
			templateLabels(map[string]string{"app": "other"}), rejected(fieldTemplateLabels, msgMismatchLabelValue)),
		Entry("rule 2 (matchLabels): a value differing only in case is rejected",
			templateLabels(map[string]string{"app": "Agent"}), rejected(fieldTemplateLabels, msgMismatchLabelValue)),
		Entry("rule 2 (matchLabels): every mismatch message starts with the common prefix",
			templateLabels(map[string]string{"app": "other"}), rejected(fieldTemplateLabels, msgMismatchPrefix)),

		Entry("rule 2 (In): a label value among the values is accepted",
			selector(nil, req("app", metav1.LabelSelectorOpIn, "other", "agent")), accepted),
		Entry("rule 2 (In): a label value not among the values is rejected",
			selector(nil, req("app", metav1.LabelSelectorOpIn, "other", "third")), rejected(fieldTemplateLabels, msgMismatchIn)),
		Entry("rule 2 (In): a missing key is rejected",
			selector(nil, req("tier", metav1.LabelSelectorOpIn, "node")), rejected(fieldTemplateLabels, msgMismatchIn)),
		Entry("rule 2 (In): a template without labels is rejected",
			all(selector(nil, req("app", metav1.LabelSelectorOpIn, "agent")), templateLabels(nil)), rejected(fieldTemplateLabels, msgMismatchIn)),
		Entry("rule 2 (In): the 8th of 8 values is checked and accepted",
			all(selector(nil, req("app", metav1.LabelSelectorOpIn, values(8)...)), templateLabels(map[string]string{"app": "v8"})), accepted),
		Entry("rule 2 (In): a value outside 8 values is rejected",
			all(selector(nil, req("app", metav1.LabelSelectorOpIn, values(8)...)), templateLabels(map[string]string{"app": "v9"})),
			rejected(fieldTemplateLabels, msgMismatchIn)),
		Entry("rule 2 (In): the 9th of 9 values is accepted",
			all(selector(nil, req("app", metav1.LabelSelectorOpIn, values(9)...)), templateLabels(map[string]string{"app": "v9"})), accepted),
		Entry("rule 2 (In, CEL limit): with more than 8 values only the key is checked, so a value outside them is accepted",
			all(selector(nil, req("app", metav1.LabelSelectorOpIn, values(9)...)), templateLabels(map[string]string{"app": "v10"})), accepted),
		Entry("rule 2 (In, CEL limit): with more than 8 values a missing key is still rejected",
			all(selector(nil, req("tier", metav1.LabelSelectorOpIn, values(9)...))), rejected(fieldTemplateLabels, msgMismatchIn)),

		Entry("rule 2 (NotIn): a label value not among the values is accepted",
			selector(nil, req("app", metav1.LabelSelectorOpNotIn, "other")), accepted),
		Entry("rule 2 (NotIn): a missing key is accepted",
			all(selector(map[string]string{"app": "agent"}, req("tier", metav1.LabelSelectorOpNotIn, "node"))), accepted),
		Entry("rule 2 (NotIn): a template without labels is accepted",
			all(selector(nil, req("tier", metav1.LabelSelectorOpNotIn, "node")), templateLabels(nil)), accepted),
		Entry("rule 2 (NotIn): a label value among the values is rejected",
			selector(nil, req("app", metav1.LabelSelectorOpNotIn, "other", "agent")), rejected(fieldTemplateLabels, msgMismatchNotIn)),
		Entry("rule 2 (NotIn): the 8th of 8 values is checked and rejected",
			all(selector(nil, req("app", metav1.LabelSelectorOpNotIn, values(8)...)), templateLabels(map[string]string{"app": "v8"})),
			rejected(fieldTemplateLabels, msgMismatchNotIn)),
		Entry("rule 2 (NotIn, CEL limit): with more than 8 values the value is not checked",
			all(selector(nil, req("app", metav1.LabelSelectorOpNotIn, values(9)...)), templateLabels(map[string]string{"app": "v1"})), accepted),

		Entry("rule 2 (Exists): a present key is accepted",
			selector(nil, req("app", metav1.LabelSelectorOpExists)), accepted),
		Entry("rule 2 (Exists): a missing key is rejected",
			selector(nil, req("tier", metav1.LabelSelectorOpExists)), rejected(fieldTemplateLabels, msgMismatchExists)),
		Entry("rule 2 (Exists): a template without labels is rejected",
			all(selector(nil, req("app", metav1.LabelSelectorOpExists)), templateLabels(nil)), rejected(fieldTemplateLabels, msgMismatchExists)),

		Entry("rule 2 (DoesNotExist): a missing key is accepted",
			selector(map[string]string{"app": "agent"}, req("tier", metav1.LabelSelectorOpDoesNotExist)), accepted),
		Entry("rule 2 (DoesNotExist): a template without labels is accepted",
			all(selector(nil, req("tier", metav1.LabelSelectorOpDoesNotExist)), templateLabels(nil)), accepted),
		Entry("rule 2 (DoesNotExist): a present key is rejected",
			selector(map[string]string{"app": "agent"}, req("app", metav1.LabelSelectorOpDoesNotExist)), rejected(fieldTemplateLabels, msgMismatchDoesNotExist)),

		Entry("rule 2 (combined): matchLabels and every operator together are accepted",
			all(
				selector(map[string]string{"app": "agent"},
					req("tier", metav1.LabelSelectorOpIn, "node", "edge"),
					req("track", metav1.LabelSelectorOpNotIn, "canary"),
					req("team", metav1.LabelSelectorOpExists),
					req("legacy", metav1.LabelSelectorOpDoesNotExist)),
				templateLabels(map[string]string{"app": "agent", "tier": "edge", "track": "stable", "team": "infra"})),
			accepted),
		Entry("rule 2 (combined): one failing requirement among several is rejected",
			all(
				selector(map[string]string{"app": "agent"},
					req("tier", metav1.LabelSelectorOpIn, "node"),
					req("team", metav1.LabelSelectorOpExists)),
				templateLabels(map[string]string{"app": "agent", "tier": "node"})),
			rejected(fieldTemplateLabels, msgMismatchExists)),

		// Rule 3: restartPolicy.
		Entry("rule 3 (restartPolicy): Always is accepted",
			func(n *nasv1alpha1.NodeAgentSet) { n.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyAlways }, accepted),
		Entry("rule 3 (restartPolicy): OnFailure is rejected",
			func(n *nasv1alpha1.NodeAgentSet) { n.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyOnFailure },
			rejected(fieldRestartPolicy, msgRestartPolicy)),
		Entry("rule 3 (restartPolicy): Never is rejected",
			func(n *nasv1alpha1.NodeAgentSet) { n.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyNever },
			rejected(fieldRestartPolicy, msgRestartPolicy)),

		// Rule 4: activeDeadlineSeconds.
		Entry("rule 4 (activeDeadlineSeconds): any value is rejected",
			func(n *nasv1alpha1.NodeAgentSet) { n.Spec.Template.Spec.ActiveDeadlineSeconds = ptr.To[int64](600) },
			rejected(fieldActiveDeadline, msgActiveDeadline)),

		// Rule 5: minReadySeconds and revisionHistoryLimit.
		Entry("rule 5 (minReadySeconds): a positive value is accepted",
			func(n *nasv1alpha1.NodeAgentSet) { n.Spec.MinReadySeconds = 30 }, accepted),
		Entry("rule 5 (minReadySeconds): a negative value is rejected",
			func(n *nasv1alpha1.NodeAgentSet) { n.Spec.MinReadySeconds = -1 }, rejected("spec.minReadySeconds", msgMinimumZero)),
		Entry("rule 5 (revisionHistoryLimit): 0 is accepted",
			func(n *nasv1alpha1.NodeAgentSet) { n.Spec.RevisionHistoryLimit = ptr.To[int32](0) }, accepted),
		Entry("rule 5 (revisionHistoryLimit): a negative value is rejected",
			func(n *nasv1alpha1.NodeAgentSet) { n.Spec.RevisionHistoryLimit = ptr.To[int32](-1) },
			rejected("spec.revisionHistoryLimit", msgMinimumZero)),

		// Rule 6: updateStrategy.type.
		Entry("rule 6 (updateStrategy.type): OnDelete is accepted",
			func(n *nasv1alpha1.NodeAgentSet) { n.Spec.UpdateStrategy.Type = nasv1alpha1.OnDeleteStrategyType }, accepted),
		Entry("rule 6 (updateStrategy.type): RollingUpdate is accepted",
			func(n *nasv1alpha1.NodeAgentSet) { n.Spec.UpdateStrategy.Type = nasv1alpha1.RollingUpdateStrategyType }, accepted),
		Entry("rule 6 (updateStrategy.type): another type is rejected",
			func(n *nasv1alpha1.NodeAgentSet) { n.Spec.UpdateStrategy.Type = "Recreate" },
			rejected("spec.updateStrategy.type", msgStrategyValues)),

		// Rule 7: int-or-percent fields.
		Entry("rule 7 (int-or-percent): maxUnavailable 3 is accepted", rollingUpdate(num(3), nil), accepted),
		Entry("rule 7 (int-or-percent): maxUnavailable 100% is accepted", rollingUpdate(str("100%"), nil), accepted),
		Entry("rule 7 (int-or-percent): maxUnavailable 5% is accepted", rollingUpdate(str("5%"), nil), accepted),
		Entry("rule 7 (int-or-percent): maxSurge 50% is accepted", rollingUpdate(num(0), str("50%")), accepted),
		Entry("rule 7 (int-or-percent): maxUnavailable -1 is rejected", rollingUpdate(num(-1), nil), rejected(fieldMaxUnavailable, msgIntOrPercent)),
		Entry("rule 7 (int-or-percent): maxUnavailable 101% is rejected", rollingUpdate(str("101%"), nil), rejected(fieldMaxUnavailable, msgIntOrPercent)),
		Entry("rule 7 (int-or-percent): maxUnavailable abc is rejected", rollingUpdate(str("abc"), nil), rejected(fieldMaxUnavailable, msgIntOrPercent)),
		Entry("rule 7 (int-or-percent): maxUnavailable \"5\" (no %) is rejected", rollingUpdate(str("5"), nil), rejected(fieldMaxUnavailable, msgIntOrPercent)),
		Entry("rule 7 (int-or-percent): maxUnavailable -5% is rejected", rollingUpdate(str("-5%"), nil), rejected(fieldMaxUnavailable, msgIntOrPercent)),
		Entry("rule 7 (int-or-percent): maxUnavailable 05% is rejected", rollingUpdate(str("05%"), nil), rejected(fieldMaxUnavailable, msgIntOrPercent)),
		Entry("rule 7 (int-or-percent): maxSurge -1 is rejected", rollingUpdate(num(0), num(-1)), rejected(fieldMaxSurge, msgIntOrPercent)),
		Entry("rule 7 (int-or-percent): maxSurge 101% is rejected", rollingUpdate(nil, str("101%")), rejected(fieldMaxSurge, msgIntOrPercent)),
		Entry("rule 7 (int-or-percent): maxSurge abc is rejected", rollingUpdate(nil, str("abc")), rejected(fieldMaxSurge, msgIntOrPercent)),
		Entry("rule 7 (int-or-percent): maxSurge \"5\" (no %) is rejected", rollingUpdate(nil, str("5")), rejected(fieldMaxSurge, msgIntOrPercent)),

		// Rule 8: maxSurge and maxUnavailable.
		Entry("rule 8 (budget): maxUnavailable 2 with maxSurge 0 is accepted", rollingUpdate(num(2), num(0)), accepted),
		Entry("rule 8 (budget): maxUnavailable 2 with maxSurge 0% is accepted", rollingUpdate(num(2), str("0%")), accepted),
		Entry("rule 8 (budget): maxUnavailable 0 with maxSurge 1 is accepted", rollingUpdate(num(0), num(1)), accepted),
		Entry("rule 8 (budget): maxUnavailable 0% with maxSurge 25% is accepted", rollingUpdate(str("0%"), str("25%")), accepted),
		Entry("rule 8 (budget): maxSurge 1 alone is accepted (our difference from upstream)", rollingUpdate(nil, num(1)), accepted),
		Entry("rule 8 (budget): maxSurge 0 alone is accepted (maxUnavailable is then 1)", rollingUpdate(nil, num(0)), accepted),
		Entry("rule 8 (budget): maxUnavailable 1 alone is accepted", rollingUpdate(num(1), nil), accepted),
		Entry("rule 8 (budget): an empty rollingUpdate is accepted", rollingUpdate(nil, nil), accepted),
		Entry("rule 8 (both non-zero): maxUnavailable 1 with maxSurge 1 is rejected",
			rollingUpdate(num(1), num(1)), rejected(fieldRollingUpdate, msgBothNonZero)),
		Entry("rule 8 (both non-zero): maxUnavailable 10% with maxSurge 5% is rejected",
			rollingUpdate(str("10%"), str("5%")), rejected(fieldRollingUpdate, msgBothNonZero)),
		Entry("rule 8 (both non-zero): maxUnavailable 1 with maxSurge 100% is rejected",
			rollingUpdate(num(1), str("100%")), rejected(fieldRollingUpdate, msgBothNonZero)),
		Entry("rule 8 (both zero): maxUnavailable 0 with maxSurge 0 is rejected",
			rollingUpdate(num(0), num(0)), rejected(fieldRollingUpdate, msgBothZero)),
		Entry("rule 8 (both zero): maxUnavailable 0% with maxSurge 0 is rejected",
			rollingUpdate(str("0%"), num(0)), rejected(fieldRollingUpdate, msgBothZero)),
		Entry("rule 8 (both zero): maxUnavailable 0 with maxSurge 0% is rejected",
			rollingUpdate(num(0), str("0%")), rejected(fieldRollingUpdate, msgBothZero)),
		Entry("rule 8 (both zero): maxUnavailable 0 alone is rejected (maxSurge is then 0)",
			rollingUpdate(num(0), nil), rejected(fieldRollingUpdate, msgBothZero)),

		// Rule 9: containers.
		Entry("rule 9 (containers): an empty list is rejected",
			func(n *nasv1alpha1.NodeAgentSet) { n.Spec.Template.Spec.Containers = []corev1.Container{} },
			rejected(fieldContainers, msgNoContainers)),
		Entry("rule 9 (containers): a missing list is rejected",
			func(n *nasv1alpha1.NodeAgentSet) { n.Spec.Template.Spec.Containers = nil },
			rejected(fieldContainers, msgRequired)),
		Entry("rule 9 (containers): two containers of the same name are rejected (containers is a list-map keyed by name)",
			func(n *nasv1alpha1.NodeAgentSet) {
				n.Spec.Template.Spec.Containers = append(n.Spec.Template.Spec.Containers, corev1.Container{Name: "agent", Image: "registry.example.com/other:1.0"})
			}, rejected("spec.template.spec.containers[1]", "Duplicate value")),
		Entry("rule 9 (containers, CEL limit): a name shared by a container and an init container is left to the pod dry-run",
			func(n *nasv1alpha1.NodeAgentSet) {
				n.Spec.Template.Spec.InitContainers = []corev1.Container{{Name: "agent", Image: "registry.example.com/init:1.0"}}
			}, accepted),
		Entry("rule 9 (containers): two containers are accepted",
			func(n *nasv1alpha1.NodeAgentSet) {
				n.Spec.Template.Spec.Containers = append(n.Spec.Template.Spec.Containers, corev1.Container{Name: "sidecar", Image: "registry.example.com/sidecar:1.0"})
			}, accepted),
	)

	DescribeTable("creating a NodeAgentSet written as JSON",
		func(edit func(spec map[string]any), want outcome) {
			expectOutcome(k8sClient.Create(ctx, rawNAS(ns, edit)), want)
		},
		Entry("rule 1 (selector required): a spec without selector is rejected",
			func(spec map[string]any) { delete(spec, "selector") }, rejected(fieldSelector, msgRequired)),
		Entry("rule 9 (containers): a template without spec is rejected",
			func(spec map[string]any) { delete(spec["template"].(map[string]any), "spec") }, rejected(fieldContainers, msgNoContainers)),
		Entry("rule 7 (int-or-percent): a number written as a string is rejected",
			func(spec map[string]any) {
				spec["updateStrategy"] = map[string]any{"rollingUpdate": map[string]any{"maxUnavailable": "2"}}
			}, rejected(fieldMaxUnavailable, msgIntOrPercent)),
		Entry("rule 7 (int-or-percent): a fraction is rejected",
			func(spec map[string]any) {
				spec["updateStrategy"] = map[string]any{"rollingUpdate": map[string]any{"maxUnavailable": 1.5}}
			}, rejected(fieldMaxUnavailable, "must be of type integer")),
		Entry("rule 2 (matchLabels): a template with metadata but no labels is rejected",
			func(spec map[string]any) {
				spec["template"].(map[string]any)["metadata"] = map[string]any{"annotations": map[string]any{"a": "b"}}
			}, rejected(fieldTemplateLabels, msgMismatchLabelKey)),
	)

	Describe("defaults (rules 5, 6 and 8)", func() {
		create := func(edit func(spec map[string]any)) string {
			GinkgoHelper()
			u := rawNAS(ns, edit)
			Expect(k8sClient.Create(ctx, u)).To(Succeed())
			return u.GetName()
		}
		rollingUpdateOf := func(name string) (map[string]any, bool) {
			GinkgoHelper()
			ru, found, err := unstructured.NestedMap(getRaw(ns, name).Object, "spec", "updateStrategy", "rollingUpdate")
			Expect(err).NotTo(HaveOccurred())
			return ru, found
		}

		It("rule 5/6: fill revisionHistoryLimit, minReadySeconds stays 0, and the whole updateStrategy when it is omitted", func() {
			name := create(nil)
			n := getTyped(ns, name)
			Expect(n.Spec.RevisionHistoryLimit).To(Equal(ptr.To[int32](10)))
			Expect(n.Spec.ProgressDeadlineSeconds).To(Equal(ptr.To[int32](600)))
			Expect(n.Spec.MinReadySeconds).To(BeZero())
			Expect(n.Spec.UpdateStrategy.Type).To(Equal(nasv1alpha1.RollingUpdateStrategyType))
			Expect(n.Spec.UpdateStrategy.RollingUpdate).NotTo(BeNil())
			Expect(n.Spec.UpdateStrategy.RollingUpdate.MaxUnavailable).To(Equal(num(1)))
			Expect(n.Spec.UpdateStrategy.RollingUpdate.MaxSurge).To(Equal(num(0)))
		})

		It("rule 6: fill type and rollingUpdate of an empty updateStrategy", func() {
			name := create(func(spec map[string]any) { spec["updateStrategy"] = map[string]any{} })
			n := getTyped(ns, name)
			Expect(n.Spec.UpdateStrategy.Type).To(Equal(nasv1alpha1.RollingUpdateStrategyType))
			Expect(n.Spec.UpdateStrategy.RollingUpdate).To(Equal(&nasv1alpha1.RollingUpdateNodeAgentSet{MaxUnavailable: num(1), MaxSurge: num(0)}))
		})

		It("rule 6: fill type of an updateStrategy that only has rollingUpdate", func() {
			name := create(func(spec map[string]any) {
				spec["updateStrategy"] = map[string]any{"rollingUpdate": map[string]any{"maxUnavailable": "20%"}}
			})
			n := getTyped(ns, name)
			Expect(n.Spec.UpdateStrategy.Type).To(Equal(nasv1alpha1.RollingUpdateStrategyType))
			Expect(n.Spec.UpdateStrategy.RollingUpdate).To(Equal(&nasv1alpha1.RollingUpdateNodeAgentSet{MaxUnavailable: str("20%")}))
		})

		It("rule 6: fill rollingUpdate of an OnDelete strategy too (it is ignored there)", func() {
			name := create(func(spec map[string]any) { spec["updateStrategy"] = map[string]any{"type": "OnDelete"} })
			n := getTyped(ns, name)
			Expect(n.Spec.UpdateStrategy.Type).To(Equal(nasv1alpha1.OnDeleteStrategyType))
			Expect(n.Spec.UpdateStrategy.RollingUpdate).To(Equal(&nasv1alpha1.RollingUpdateNodeAgentSet{MaxUnavailable: num(1), MaxSurge: num(0)}))
		})

		It("rule 8: do not inject maxUnavailable when rollingUpdate only has maxSurge", func() {
			name := create(func(spec map[string]any) {
				spec["updateStrategy"] = map[string]any{"rollingUpdate": map[string]any{"maxSurge": 1}}
			})
			ru, found := rollingUpdateOf(name)
			Expect(found).To(BeTrue())
			Expect(ru).To(Equal(map[string]any{"maxSurge": int64(1)}))
		})

		It("rule 8: do not inject anything into an empty rollingUpdate", func() {
			name := create(func(spec map[string]any) {
				spec["updateStrategy"] = map[string]any{"type": "RollingUpdate", "rollingUpdate": map[string]any{}}
			})
			ru, found := rollingUpdateOf(name)
			Expect(found).To(BeTrue())
			Expect(ru).To(BeEmpty())
		})

		It("rule 5: keep an explicit revisionHistoryLimit of 0", func() {
			name := create(func(spec map[string]any) { spec["revisionHistoryLimit"] = 0 })
			Expect(getTyped(ns, name).Spec.RevisionHistoryLimit).To(Equal(ptr.To[int32](0)))
		})
	})

	Describe("updating a NodeAgentSet (rule 1: selector immutable)", func() {
		var n *nasv1alpha1.NodeAgentSet

		BeforeEach(func() {
			n = newNAS(ns)
			n.Spec.Template.Labels["tier"] = "node"
			Expect(k8sClient.Create(ctx, n)).To(Succeed())
		})

		It("rejects a changed selector, even one that still matches the template", func() {
			n.Spec.Selector.MatchLabels["tier"] = "node"
			expectRejected(k8sClient.Update(ctx, n), fieldSelector, msgSelectorImmutable)
		})

		It("rejects a selector rewritten into an equivalent matchExpressions", func() {
			n.Spec.Selector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{req("app", metav1.LabelSelectorOpIn, "agent")}}
			expectRejected(k8sClient.Update(ctx, n), fieldSelector, msgSelectorImmutable)
		})

		It("accepts changes to everything else, and still checks the other rules", func() {
			n.Spec.Template.Spec.Containers[0].Image = "registry.example.com/agent:2.0"
			n.Spec.MinReadySeconds = 10
			n.Spec.UpdateStrategy.RollingUpdate = &nasv1alpha1.RollingUpdateNodeAgentSet{MaxUnavailable: num(0), MaxSurge: str("10%")}
			Expect(k8sClient.Update(ctx, n)).To(Succeed())

			n.Spec.Template.Labels = map[string]string{"tier": "node"}
			expectRejected(k8sClient.Update(ctx, n), fieldTemplateLabels, msgMismatchLabelKey)
		})
	})

	Describe("the status subresource (rule 10)", func() {
		It("accepts status updates, keeps conditions of foreign types, and keeps status out of spec updates", func() {
			n := newNAS(ns)
			Expect(k8sClient.Create(ctx, n)).To(Succeed())

			now := metav1.Now().Rfc3339Copy()
			n.Status = nasv1alpha1.NodeAgentSetStatus{
				DesiredNumberScheduled: 3,
				CurrentNumberScheduled: 3,
				NumberReady:            2,
				UpdatedNumberScheduled: 3,
				NumberAvailable:        2,
				NumberUnavailable:      1,
				ObservedGeneration:     n.Generation,
				Conditions: []metav1.Condition{
					{Type: "example.com/Maintenance", Status: metav1.ConditionTrue, Reason: "Scheduled", Message: "set by another tool", LastTransitionTime: now},
					{Type: "Available", Status: metav1.ConditionFalse, Reason: "Rolling", LastTransitionTime: now},
				},
			}
			Expect(k8sClient.Status().Update(ctx, n)).To(Succeed())

			got := getTyped(ns, n.Name)
			Expect(got.Status.DesiredNumberScheduled).To(Equal(int32(3)))
			Expect(got.Status.NumberReady).To(Equal(int32(2)))
			Expect(got.Status.Conditions).To(HaveLen(2))
			Expect(got.Status.Conditions[0].Type).To(Equal("example.com/Maintenance"))
			Expect(got.Status.Conditions[0].Message).To(Equal("set by another tool"))

			// A write of the main resource does not change status.
			got.Status.NumberReady = 0
			got.Spec.MinReadySeconds = 5
			Expect(k8sClient.Update(ctx, got)).To(Succeed())
			again := getTyped(ns, n.Name)
			Expect(again.Spec.MinReadySeconds).To(Equal(int32(5)))
			Expect(again.Status.NumberReady).To(Equal(int32(2)))
		})

		It("checks conditions against the metav1.Condition schema", func() {
			n := newNAS(ns)
			Expect(k8sClient.Create(ctx, n)).To(Succeed())
			n.Status.Conditions = []metav1.Condition{{Type: "Available", Status: "Maybe", Reason: "Why", LastTransitionTime: metav1.Now()}}
			expectRejected(k8sClient.Status().Update(ctx, n), "status.conditions[0].status", `supported values: "True", "False", "Unknown"`)
		})
	})

	Describe("round trip", func() {
		It("stores a realistic host-level agent unchanged: nothing pruned, nothing rewritten", func() {
			n := newNAS(ns)
			n.Spec.Selector = &metav1.LabelSelector{
				MatchLabels:      map[string]string{"app.kubernetes.io/name": "node-exporter"},
				MatchExpressions: []metav1.LabelSelectorRequirement{req("app.kubernetes.io/component", metav1.LabelSelectorOpIn, "exporter", "agent")},
			}
			n.Spec.Template = realisticTemplate()
			n.Spec.MinReadySeconds = 15
			n.Spec.RevisionHistoryLimit = ptr.To[int32](5)
			n.Spec.ProgressDeadlineSeconds = ptr.To[int32](300)
			n.Spec.UpdateStrategy = nasv1alpha1.NodeAgentSetUpdateStrategy{
				Type:          nasv1alpha1.RollingUpdateStrategyType,
				RollingUpdate: &nasv1alpha1.RollingUpdateNodeAgentSet{MaxUnavailable: num(0), MaxSurge: str("10%")},
			}
			want := n.Spec.DeepCopy()
			Expect(k8sClient.Create(ctx, n)).To(Succeed())

			got := getTyped(ns, n.Name)
			Expect(got.Spec).To(BeComparableTo(*want))

			// The template as the API server stores it, compared as JSON: no field pruned, none added.
			wantJSON, err := json.Marshal(want.Template)
			Expect(err).NotTo(HaveOccurred())
			stored, found, err := unstructured.NestedMap(getRaw(ns, n.Name).Object, "spec", "template")
			Expect(err).NotTo(HaveOccurred())
			Expect(found).To(BeTrue())
			storedJSON, err := json.Marshal(stored)
			Expect(err).NotTo(HaveOccurred())
			Expect(storedJSON).To(MatchJSON(wantJSON))
		})
	})
})

// realisticTemplate is the pod of a host-level agent (a node exporter with host access), with every
// field the API server would default already set, so that it must come back unchanged.
func realisticTemplate() corev1.PodTemplateSpec {
	directory := corev1.HostPathDirectory
	propagation := corev1.MountPropagationHostToContainer
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{
			Labels: map[string]string{
				"app.kubernetes.io/name":      "node-exporter",
				"app.kubernetes.io/component": "exporter",
			},
			Annotations: map[string]string{"prometheus.io/scrape": "true", "prometheus.io/port": "9100"},
		},
		Spec: corev1.PodSpec{
			HostNetwork:                   true,
			HostPID:                       true,
			HostIPC:                       true,
			DNSPolicy:                     corev1.DNSClusterFirstWithHostNet,
			PriorityClassName:             "system-node-critical",
			ServiceAccountName:            "node-exporter",
			AutomountServiceAccountToken:  ptr.To(false),
			TerminationGracePeriodSeconds: ptr.To[int64](30),
			RestartPolicy:                 corev1.RestartPolicyAlways,
			NodeSelector:                  map[string]string{"kubernetes.io/os": "linux"},
			Tolerations: []corev1.Toleration{
				{Operator: corev1.TolerationOpExists},
				{Key: "node-role.kubernetes.io/control-plane", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
				{Key: "node.kubernetes.io/not-ready", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr.To[int64](300)},
			},
			SecurityContext: &corev1.PodSecurityContext{RunAsUser: ptr.To[int64](0), RunAsNonRoot: ptr.To(false)},
			InitContainers: []corev1.Container{{
				Name:            "sysctl",
				Image:           "registry.example.com/busybox:1.36",
				Command:         []string{"sh", "-c", "sysctl -w net.core.somaxconn=1024"},
				SecurityContext: &corev1.SecurityContext{Privileged: ptr.To(true)},
			}},
			Containers: []corev1.Container{{
				Name:            "exporter",
				Image:           "quay.io/prometheus/node-exporter:v1.8.2",
				ImagePullPolicy: corev1.PullIfNotPresent,
				Args:            []string{"--path.rootfs=/host", "--web.listen-address=0.0.0.0:9100"},
				Ports: []corev1.ContainerPort{
					{Name: "metrics", ContainerPort: 9100, HostPort: 9100, Protocol: corev1.ProtocolTCP},
				},
				Env: []corev1.EnvVar{
					{Name: "NODE_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "spec.nodeName"}}},
					{Name: "LOG_LEVEL", Value: "info"},
				},
				Resources: corev1.ResourceRequirements{
					Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("64Mi")},
					Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("128Mi")},
				},
				SecurityContext: &corev1.SecurityContext{
					Privileged:               ptr.To(true),
					AllowPrivilegeEscalation: ptr.To(true),
					ReadOnlyRootFilesystem:   ptr.To(true),
					Capabilities:             &corev1.Capabilities{Add: []corev1.Capability{"SYS_ADMIN", "NET_ADMIN"}},
				},
				VolumeMounts: []corev1.VolumeMount{
					{Name: "host-root", MountPath: "/host", ReadOnly: true, MountPropagation: &propagation},
				},
				ReadinessProbe: &corev1.Probe{
					ProbeHandler:        corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/", Port: intstr.FromString("metrics"), Scheme: corev1.URISchemeHTTP}},
					InitialDelaySeconds: 5,
					TimeoutSeconds:      1,
					PeriodSeconds:       10,
					SuccessThreshold:    1,
					FailureThreshold:    3,
				},
				TerminationMessagePath:   corev1.TerminationMessagePathDefault,
				TerminationMessagePolicy: corev1.TerminationMessageReadFile,
			}},
			Volumes: []corev1.Volume{
				{Name: "host-root", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/", Type: &directory}}},
			},
		},
	}
}
