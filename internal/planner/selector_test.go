package planner

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
)

func TestSelectorMismatch(t *testing.T) {
	many := []string{"v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8"}
	tests := []struct {
		name     string
		selector metav1.LabelSelector
		labels   map[string]string
		// want is a part of the answer; "" for none.
		want string
	}{
		{name: "matching labels", selector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "a"}},
			labels: map[string]string{"app": "a", "tier": "x"}},
		{name: "In of more than 8 values, matching",
			selector: metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "tier", Operator: metav1.LabelSelectorOpIn, Values: many}}},
			labels:   map[string]string{"tier": "v8"}},
		{name: "In of more than 8 values, none the label's",
			selector: metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "tier", Operator: metav1.LabelSelectorOpIn, Values: many}}},
			labels:   map[string]string{"tier": "zz"}, want: "selector does not match template labels: tier in (v0,v1,v2,v3,v4,v5,v6,v7,v8) does not select tier=zz"},
		{name: "NotIn of more than 8 values, the label among them",
			selector: metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "tier", Operator: metav1.LabelSelectorOpNotIn, Values: many}}},
			labels:   map[string]string{"tier": "v8"}, want: "selector does not match template labels"},
		{name: "a key that is no label key",
			selector: metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "bad key!", Operator: metav1.LabelSelectorOpExists}}},
			labels:   map[string]string{"bad key!": "x"}, want: "selector is invalid: key: Invalid value: \"bad key!\""},
		{name: "a value that is no label value",
			selector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "a b"}},
			labels:   map[string]string{"app": "a b"}, want: "selector is invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set := &nasv1alpha1.NodeAgentSet{Spec: nasv1alpha1.NodeAgentSetSpec{Selector: &tt.selector}}
			set.Spec.Template.Labels = tt.labels
			got := SelectorMismatch(set)
			if tt.want == "" && got != "" || !strings.Contains(got, tt.want) {
				t.Errorf("SelectorMismatch() = %q, want %q", got, tt.want)
			}
		})
	}
}
