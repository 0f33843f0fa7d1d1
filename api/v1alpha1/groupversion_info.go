// Package v1alpha1 holds the Agent API: the one description of an agent that
// Flint reads from YAML files in local mode and from the cluster on Kubernetes.
//
// +kubebuilder:object:generate=true
// +groupName=flint.dev
package v1alpha1

//go:generate ../../bin/controller-gen object paths=./...

import (
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupVersion is the API group and version of the Agent resource.
var GroupVersion = schema.GroupVersion{Group: "flint.dev", Version: "v1alpha1"}

var (
	// SchemeBuilder registers the API types with a runtime.Scheme.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)
	// AddToScheme adds the API types to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, &Agent{}, &AgentList{})
	metav1AddToGroupVersion(s)
	return nil
}
