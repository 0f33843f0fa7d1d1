package v1alpha1

// The cluster contract: names and numbers the manager writes into the
// objects it creates and that gateways, the CLI and the chart read back.
// They are declared here, in the package every side already imports, so
// that no reader depends on the manager's package. Changing any of them is
// a breaking change for installed clusters.

// Labels on everything the manager creates. The chart's NetworkPolicy and
// the manager's own caches select on them.
const (
	// LabelManagedBy marks objects (and pods) the manager owns; its value is ManagedByValue.
	LabelManagedBy = "app.kubernetes.io/managed-by"
	// ManagedByValue is LabelManagedBy's value.
	ManagedByValue = "flint"
	// LabelAgent names the Agent an object or pod belongs to. It is the
	// Deployment's selector and the Service's, so it never changes after
	// creation.
	LabelAgent = "flint.dev/agent"
	// LabelPrefix is the prefix of Flint's own label and annotation keys;
	// an Agent's pod labels may not use it.
	LabelPrefix = "flint.dev/"
)

// Fixed pod ports of the flint-proxy sidecar. The gateway routes to
// ServingPort on the pod IP; the autoscaler scrapes AdminPort. They are
// fixed, not per agent, so the NetworkPolicy and the gateway need no
// per-agent configuration, and an agent may not listen on either (the CEL
// rule on container.port repeats the two numbers: markers cannot name a
// constant; TestCELRuleNamesSidecarPorts keeps them in step).
const (
	ServingPort     = 8012
	AdminPort       = 8022
	ServingPortName = "http"
	AdminPortName   = "admin"
	// ServingAppProtocolTLS on a Service's serving port tells the gateways
	// the sidecars serve TLS there.
	ServingAppProtocolTLS = "https"
)

// DesiredReplicas is the number of replicas an agent asks for: the scale the
// autoscaler (or kubectl scale) wrote, clamped to [minReplicas, maxReplicas].
// The CRD defaults the scale to 0, so before the autoscaler first decides an
// agent runs minReplicas; and tightened bounds hold at once, without waiting
// for the autoscaler's next tick.
func DesiredReplicas(a *Agent) int32 {
	minR, maxR := a.Spec.MinReplicas(), a.Spec.MaxReplicas()
	n := minR
	if r := a.Spec.Scaling.Replicas; r != nil {
		n = *r
	}
	return max(minR, min(n, maxR))
}
