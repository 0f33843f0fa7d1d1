package controller

import (
	"k8s.io/apimachinery/pkg/labels"

	"github.com/flint-dev/flint/api/v1alpha1"
)

// Container names in an agent's pod.
const (
	AgentContainerName   = "agent"
	SidecarContainerName = "flint-proxy"
)

// FieldOwner is the server-side apply field manager of the manager's writes.
const FieldOwner = "flint-manager"

// labelsFor is the label set of an agent's Deployment, Service and pods.
func labelsFor(a *v1alpha1.Agent) map[string]string {
	return map[string]string{v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue, v1alpha1.LabelAgent: a.Name}
}

// selectorFor selects an agent's pods. It is the Deployment's immutable
// selector, so it holds only the agent's name.
func selectorFor(a *v1alpha1.Agent) map[string]string {
	return map[string]string{v1alpha1.LabelAgent: a.Name}
}

// Selector is the label selector of an agent's pods as a string, the form
// status.selector takes for the scale subresource.
func Selector(a *v1alpha1.Agent) string {
	return labels.SelectorFromSet(selectorFor(a)).String()
}
