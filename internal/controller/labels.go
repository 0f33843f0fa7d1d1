package controller

import (
	"k8s.io/apimachinery/pkg/labels"

	"github.com/flint-dev/flint/api/v1alpha1"
)

// Labels on everything the manager creates. The chart's NetworkPolicy and
// the manager's own caches select on them, so changing them is a breaking
// change for installed clusters.
const (
	// LabelManagedBy marks objects (and pods) the manager owns; its value is ManagedByValue.
	LabelManagedBy = "app.kubernetes.io/managed-by"
	// ManagedByValue is LabelManagedBy's value.
	ManagedByValue = "flint"
	// LabelAgent names the Agent an object or pod belongs to. It is the
	// Deployment's selector and the Service's, so it never changes after
	// creation.
	LabelAgent = "flint.dev/agent"
)

// Fixed pod ports. The gateway routes to ServingPort on the pod IP; the
// autoscaler scrapes AdminPort. They are fixed, not per agent, so the
// NetworkPolicy and the gateway need no per-agent configuration.
const (
	ServingPort     = 8012
	AdminPort       = 8022
	ServingPortName = "http"
	AdminPortName   = "admin"
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
	return map[string]string{LabelManagedBy: ManagedByValue, LabelAgent: a.Name}
}

// selectorFor selects an agent's pods. It is the Deployment's immutable
// selector, so it holds only the agent's name.
func selectorFor(a *v1alpha1.Agent) map[string]string {
	return map[string]string{LabelAgent: a.Name}
}

// Selector is the label selector of an agent's pods as a string, the form
// status.selector takes for the scale subresource.
func Selector(a *v1alpha1.Agent) string {
	return labels.SelectorFromSet(selectorFor(a)).String()
}

// DesiredReplicas is the number of replicas an agent asks for: the scale the
// autoscaler (or kubectl scale) wrote, clamped to [minReplicas, maxReplicas].
// The CRD defaults the scale to 0, so before the autoscaler first decides an
// agent runs minReplicas; and tightened bounds hold at once, without waiting
// for the autoscaler's next tick.
func DesiredReplicas(a *v1alpha1.Agent) int32 {
	minR, maxR := a.Spec.MinReplicas(), a.Spec.MaxReplicas()
	n := minR
	if r := a.Spec.Scaling.Replicas; r != nil {
		n = *r
	}
	return max(minR, min(n, maxR))
}
