package planner

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
)

// SelectorMismatch says why the set's selector cannot own the pods of its template, or "" when it
// can. The schema refuses most mismatches; it cannot check the syntax of label keys and values, nor
// In and NotIn requirements of more than 8 values (docs/validation.md). A set whose pods its own
// selector does not match would adopt none of them, and create pods for ever.
func SelectorMismatch(set *nasv1alpha1.NodeAgentSet) string {
	sel, err := metav1.LabelSelectorAsSelector(set.Spec.Selector)
	if err != nil {
		return fmt.Sprintf("selector is invalid: %v", err)
	}
	if !sel.Matches(labels.Set(set.Spec.Template.Labels)) {
		return fmt.Sprintf("selector does not match template labels: %s does not select %s",
			sel.String(), labels.Set(set.Spec.Template.Labels).String())
	}
	return ""
}
