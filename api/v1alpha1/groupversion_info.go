// Package v1alpha1 contains the NodeAgentSet API, group apps.nodeagentset.io, version v1alpha1.
//
// +kubebuilder:object:generate=true
// +groupName=apps.nodeagentset.io
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// GroupVersion is the group and version of this API.
	GroupVersion = schema.GroupVersion{Group: "apps.nodeagentset.io", Version: "v1alpha1"}

	// SchemeBuilder registers the types of this API with a scheme.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds the types of this API to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

func addKnownTypes(scheme *runtime.Scheme) error {
	scheme.AddKnownTypes(GroupVersion, &NodeAgentSet{}, &NodeAgentSetList{})
	metav1.AddToGroupVersion(scheme, GroupVersion)
	return nil
}
