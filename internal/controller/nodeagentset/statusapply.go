package nodeagentset

import (
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	nasv1alpha1 "github.com/nodeagentset/nodeagentset/api/v1alpha1"
)

// ownedConditionTypes are the condition types this controller writes; it leaves all others alone.
var ownedConditionTypes = map[string]bool{
	nasv1alpha1.ConditionAvailable:        true,
	nasv1alpha1.ConditionProgressing:      true,
	nasv1alpha1.ConditionPodTemplateValid: true,
}

// statusApplyConfiguration is the server-side apply request for the status fields this controller
// owns: the counters, observedGeneration, the revisions, collisionCount and its own condition types.
func statusApplyConfiguration(set *nasv1alpha1.NodeAgentSet, st *nasv1alpha1.NodeAgentSetStatus) (runtime.ApplyConfiguration, error) {
	owned := st.DeepCopy()
	owned.Conditions = nil
	for _, c := range st.Conditions {
		if ownedConditionTypes[c.Type] {
			owned.Conditions = append(owned.Conditions, c)
		}
	}
	status, err := runtime.DefaultUnstructuredConverter.ToUnstructured(owned)
	if err != nil {
		return nil, fmt.Errorf("converting status: %w", err)
	}
	u := &unstructured.Unstructured{Object: map[string]any{"status": status}}
	u.SetGroupVersionKind(nasv1alpha1.GroupVersion.WithKind("NodeAgentSet"))
	u.SetNamespace(set.Namespace)
	u.SetName(set.Name)
	return client.ApplyConfigurationFromUnstructured(u), nil
}
