package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

func metav1AddToGroupVersion(s *runtime.Scheme) { metav1.AddToGroupVersion(s, GroupVersion) }

// Protocol is what an agent speaks on its port.
// +kubebuilder:validation:Enum=http;mcp;a2a
type Protocol string

const (
	ProtocolHTTP Protocol = "http"
	ProtocolMCP  Protocol = "mcp"
	ProtocolA2A  Protocol = "a2a"
)

// Agent is a workload that Flint runs on demand: it scales to zero when idle,
// wakes on the first request and scales out under load.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:subresource:scale:specpath=.spec.scaling.replicas,statuspath=.status.replicas,selectorpath=.status.selector
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Replicas",type=integer,JSONPath=`.status.replicas`
// +kubebuilder:printcolumn:name="Protocol",type=string,JSONPath=`.spec.protocol`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="Last Invocation",type=date,JSONPath=`.status.lastInvocationAt`
type Agent struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   AgentSpec   `json:"spec"`
	Status AgentStatus `json:"status,omitempty"`
}

// AgentSpec describes how to run an agent and how far to scale it.
type AgentSpec struct {
	// Protocol the agent speaks: http (default), mcp or a2a. It turns on
	// protocol-aware routing (MCP session affinity, A2A agent card rewriting).
	// +optional
	// +kubebuilder:default=http
	Protocol Protocol `json:"protocol,omitempty"`

	// Container is the process to run. Locally command+args run directly;
	// on Kubernetes image runs as a container.
	Container AgentContainer `json:"container"`

	// Concurrency is the hard cap of in-flight requests per replica; 0 means unlimited.
	// +optional
	// +kubebuilder:validation:Minimum=0
	Concurrency int32 `json:"concurrency,omitempty"`

	// Scaling bounds and tuning of the autoscaler.
	// +optional
	Scaling Scaling `json:"scaling,omitempty"`

	// Timeouts for requests and cold starts.
	// +optional
	Timeouts Timeouts `json:"timeouts,omitempty"`
}

// AgentContainer is the subset of a core/v1 Container that an agent needs.
type AgentContainer struct {
	// Image is the container image used on Kubernetes.
	// +optional
	Image string `json:"image,omitempty"`
	// Command is the entrypoint. Locally it is run directly; on Kubernetes it overrides the image's entrypoint.
	// +optional
	Command []string `json:"command,omitempty"`
	// Args are passed to the command.
	// +optional
	Args []string `json:"args,omitempty"`
	// Port is the port the agent listens on; the environment variable PORT is set to it.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port"`
	// Env sets environment variables for the agent.
	// +optional
	Env []corev1.EnvVar `json:"env,omitempty"`
	// Resources are the compute resources of the agent container on Kubernetes.
	// +optional
	Resources corev1.ResourceRequirements `json:"resources,omitempty"`
	// ReadinessProbe tells when the agent can serve. The sidecar runs it
	// aggressively at start; without one it checks that the port accepts connections.
	// +optional
	ReadinessProbe *corev1.Probe `json:"readinessProbe,omitempty"`
}

// Scaling holds the autoscaler's bounds and windows.
type Scaling struct {
	// MinReplicas is the floor; 0 lets the agent scale to zero.
	// +optional
	// +kubebuilder:validation:Minimum=0
	MinReplicas *int32 `json:"minReplicas,omitempty"`
	// MaxReplicas is the ceiling.
	// +optional
	// +kubebuilder:validation:Minimum=1
	MaxReplicas *int32 `json:"maxReplicas,omitempty"`
	// Target is the number of in-flight requests per replica the autoscaler aims for.
	// Defaults to 70% of concurrency, or 100 when concurrency is unlimited.
	// +optional
	// +kubebuilder:validation:Minimum=1
	Target *int32 `json:"target,omitempty"`
	// ScaleToZeroAfter is how long an agent must be idle before its last replica goes.
	// +optional
	ScaleToZeroAfter *metav1.Duration `json:"scaleToZeroAfter,omitempty"`
	// StableWindow is the autoscaler's averaging window; there is no scale-down
	// within this long of a scale-up.
	// +optional
	StableWindow *metav1.Duration `json:"stableWindow,omitempty"`
	// Replicas is the autoscaler's current decision, written through the scale
	// subresource. Users do not set it.
	// +optional
	Replicas *int32 `json:"replicas,omitempty"`
}

// Timeouts bound how long a request may take.
type Timeouts struct {
	// Request is the longest a request (including a stream) may run.
	// +optional
	Request *metav1.Duration `json:"request,omitempty"`
	// ColdStart is the longest a request is held while the agent scales from zero.
	// +optional
	ColdStart *metav1.Duration `json:"coldStart,omitempty"`
}

// AgentStatus is what Flint observed about an agent.
type AgentStatus struct {
	// Replicas is the number of replicas that exist.
	// +optional
	Replicas int32 `json:"replicas,omitempty"`
	// ReadyReplicas is the number of replicas that can serve.
	// +optional
	ReadyReplicas int32 `json:"readyReplicas,omitempty"`
	// DesiredReplicas is the autoscaler's latest decision.
	// +optional
	DesiredReplicas int32 `json:"desiredReplicas,omitempty"`
	// Selector is the label selector of the agent's pods, for the scale subresource.
	// +optional
	Selector string `json:"selector,omitempty"`
	// LastInvocationAt is when a request last reached the agent (coalesced).
	// +optional
	LastInvocationAt *metav1.Time `json:"lastInvocationAt,omitempty"`
	// URL is where the agent is invoked through the gateway.
	// +optional
	URL string `json:"url,omitempty"`
	// ObservedGeneration is the generation last reconciled.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions: Ready and ScaledToZero.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// Condition types of an Agent.
const (
	ConditionReady        = "Ready"
	ConditionScaledToZero = "ScaledToZero"
)

// AgentList is a list of Agents.
//
// +kubebuilder:object:root=true
type AgentList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Agent `json:"items"`
}
