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
// The name becomes the name of the agent's Service, hence the DNS-1035 rule.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:categories=flint,shortName=ag
// +kubebuilder:validation:XValidation:rule="size(self.metadata.name) <= 63 && self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')",message="metadata.name must be a DNS-1035 label: at most 63 lowercase letters, digits and '-', starting with a letter and ending with a letter or digit"
// +kubebuilder:subresource:status
// +kubebuilder:subresource:scale:specpath=.spec.scaling.replicas,statuspath=.status.replicas,selectorpath=.status.selector
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Replicas",type=integer,JSONPath=`.status.replicas`
// +kubebuilder:printcolumn:name="Min",type=integer,JSONPath=`.spec.scaling.minReplicas`
// +kubebuilder:printcolumn:name="Max",type=integer,JSONPath=`.status.maxReplicas`
// +kubebuilder:printcolumn:name="URL",type=string,JSONPath=`.status.url`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="Protocol",type=string,JSONPath=`.spec.protocol`,priority=1
// +kubebuilder:printcolumn:name="Last Invocation",type=date,JSONPath=`.status.lastInvocationAt`,priority=1
type Agent struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   AgentSpec   `json:"spec"`
	Status AgentStatus `json:"status,omitempty"`
}

// The CEL rules on these types mirror validation.go, message for message, so
// a cluster refuses exactly what local mode refuses. Rules that compare two
// fields live on their closest common parent and point fieldPath at the field
// to change. Integer ranges are CEL rules rather than minimum/maximum: the API
// server would report both, and only the rule's message says what to do.
// (Developer notes sit in a block of their own, apart from the doc comment,
// so they stay out of the CRD's descriptions; controller-gen reads markers
// from both blocks.)
//
// +kubebuilder:validation:XValidation:rule="!has(self.scaling) || !has(self.scaling.target) || !has(self.concurrency) || self.concurrency == 0 || self.scaling.target <= self.concurrency",message="target must not exceed concurrency: replicas can never hold more",messageExpression="'target (%d) must not exceed concurrency (%d): replicas can never hold more'.format([self.scaling.target, self.concurrency])",fieldPath=".scaling.target"

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
	// +kubebuilder:validation:XValidation:rule="self >= 0",message="concurrency must be 0 (unlimited) or a positive cap"
	Concurrency int32 `json:"concurrency,omitempty"`

	// Scaling bounds and tuning of the autoscaler.
	// +optional
	// +kubebuilder:default={}
	Scaling Scaling `json:"scaling,omitempty"`

	// Timeouts for requests and cold starts.
	// +optional
	// +kubebuilder:default={}
	Timeouts Timeouts `json:"timeouts,omitempty"`

	// Pod holds the pod-level settings of the agent's replicas on Kubernetes.
	// +optional
	Pod *AgentPod `json:"pod,omitempty"`

	// Public lets anyone invoke the agent when the gateway requires
	// authentication (API keys or JWTs); other agents need credentials.
	// +optional
	Public bool `json:"public,omitempty"`
}

// AgentContainer is the agent's container: the fields of a core/v1
// Container a workload needs, as Knative Serving allows them. Flint owns the
// rest (name, ports, lifecycle, restartPolicy): it sets them itself, so they
// are not fields here and the API server refuses them as unknown fields.
//
// +kubebuilder:validation:XValidation:rule="has(self.image) && size(self.image) > 0",message="set image: the container image the agent runs on Kubernetes (local mode runs command instead)",fieldPath=".image",reason="FieldValueRequired"
type AgentContainer struct {
	// Image is the container image run on Kubernetes; required there.
	// Local mode runs command+args instead and ignores it.
	// +optional
	Image string `json:"image,omitempty"`
	// ImagePullPolicy is Always, Never or IfNotPresent (the Kubernetes default applies when unset).
	// +optional
	ImagePullPolicy corev1.PullPolicy `json:"imagePullPolicy,omitempty"`
	// Command is the entrypoint. Locally it is run directly; on Kubernetes it overrides the image's entrypoint.
	// +optional
	Command []string `json:"command,omitempty"`
	// Args are passed to the command.
	// +optional
	Args []string `json:"args,omitempty"`
	// WorkingDir is the container's working directory on Kubernetes.
	// +optional
	WorkingDir string `json:"workingDir,omitempty"`
	// Port is the port the agent listens on (1-65535); the environment variable PORT is set to it.
	// +kubebuilder:validation:XValidation:rule="self >= 1 && self <= 65535",message="set port to the TCP port the agent listens on (1-65535)"
	// +kubebuilder:validation:XValidation:rule="self != 8012 && self != 8022",message="ports 8012 and 8022 belong to the flint-proxy sidecar in the agent's pod: make the agent listen on another port"
	Port int32 `json:"port"`
	// Env sets environment variables for the agent.
	// +optional
	Env []corev1.EnvVar `json:"env,omitempty"`
	// EnvFrom sets environment variables from ConfigMaps and Secrets (Kubernetes only).
	// +optional
	EnvFrom []corev1.EnvFromSource `json:"envFrom,omitempty"`
	// Resources are the compute resources of the agent container on Kubernetes,
	// extended resources (e.g. nvidia.com/gpu) included.
	// +optional
	Resources corev1.ResourceRequirements `json:"resources,omitempty"`
	// VolumeMounts mount spec.pod.volumes into the agent container.
	// +optional
	// +kubebuilder:validation:MaxItems=64
	VolumeMounts []corev1.VolumeMount `json:"volumeMounts,omitempty"`
	// ReadinessProbe tells when the agent can serve. The sidecar runs an
	// HTTP GET or TCP probe of the agent's port itself, aggressively at start;
	// any other probe (exec, gRPC, another port, HTTPS, headers) is also
	// run by the kubelet on the agent container. Without one the sidecar
	// checks that the port accepts connections.
	// +optional
	ReadinessProbe *corev1.Probe `json:"readinessProbe,omitempty"`
	// LivenessProbe restarts the agent container when it fails (Kubernetes only).
	// +optional
	LivenessProbe *corev1.Probe `json:"livenessProbe,omitempty"`
	// StartupProbe holds liveness checks back until it succeeds (Kubernetes only).
	// +optional
	StartupProbe *corev1.Probe `json:"startupProbe,omitempty"`
	// SecurityContext of the agent container. Unset fields get the Pod
	// Security "restricted" values (runAsNonRoot, no privilege escalation,
	// all capabilities dropped, RuntimeDefault seccomp) unless spec.pod.securityContext sets them.
	// +optional
	SecurityContext *corev1.SecurityContext `json:"securityContext,omitempty"`
}

// Each duration has a format rule and a value rule; the value rule passes on
// a malformed string so that only the format message is shown rather than a
// CEL evaluation error. The schema has no duration format of its own, and
// MaxLength bounds the regular expression's estimated cost.
//
// maxReplicas and target have no CRD default: theirs depend on other fields
// (max(10, minReplicas); 70% of concurrency) and are applied by Default().
// Without a maxReplicas default, minReplicas: 20 alone stays valid, as locally.
// replicas defaults to 0 because the API server answers GET agents/scale
// with an internal error when the spec replicas path is missing; 0 and
// unset mean the same (clamped up to minReplicas).
//
// +kubebuilder:validation:XValidation:rule="!has(self.minReplicas) || !has(self.maxReplicas) || self.minReplicas <= self.maxReplicas",message="minReplicas must not exceed maxReplicas",messageExpression="'minReplicas (%d) must not exceed maxReplicas (%d)'.format([self.minReplicas, self.maxReplicas])",fieldPath=".minReplicas"

// Scaling holds the autoscaler's bounds and windows. Durations are written
// like 30s, 5m or 1h30m.
type Scaling struct {
	// MinReplicas is the floor; 0 lets the agent scale to zero.
	// +optional
	// +kubebuilder:default=0
	// +kubebuilder:validation:XValidation:rule="self >= 0",message="minReplicas must not be negative"
	MinReplicas *int32 `json:"minReplicas,omitempty"`
	// MaxReplicas is the ceiling. Defaults to 10, or minReplicas when that is larger.
	// +optional
	// +kubebuilder:validation:XValidation:rule="self >= 1",message="maxReplicas must be at least 1"
	MaxReplicas *int32 `json:"maxReplicas,omitempty"`
	// Target is the number of in-flight requests per replica the autoscaler aims for.
	// Defaults to 70% of concurrency, or 100 when concurrency is unlimited.
	// +optional
	// +kubebuilder:validation:XValidation:rule="self >= 1",message="target must be at least 1"
	Target *int32 `json:"target,omitempty"`
	// ScaleToZeroAfter is how long an agent must be idle before its last replica goes.
	// +optional
	// +kubebuilder:default="30s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="self.matches('^-?(0|([0-9]+([.][0-9]*)?(ns|us|ms|s|m|h))+)$')",message="scaleToZeroAfter must be a duration such as 30s, 5m or 1h30m"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^-?(0|([0-9]+([.][0-9]*)?(ns|us|ms|s|m|h))+)$') || duration(self) > duration('0s')",message="scaleToZeroAfter must be positive"
	ScaleToZeroAfter *metav1.Duration `json:"scaleToZeroAfter,omitempty"`
	// StableWindow is the autoscaler's averaging window (6s to 1h); there is no
	// scale-down within this long of a scale-up.
	// +optional
	// +kubebuilder:default="60s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="self.matches('^-?(0|([0-9]+([.][0-9]*)?(ns|us|ms|s|m|h))+)$')",message="stableWindow must be a duration such as 60s, 5m or 1h"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^-?(0|([0-9]+([.][0-9]*)?(ns|us|ms|s|m|h))+)$') || (duration(self) >= duration('6s') && duration(self) <= duration('1h'))",message="stableWindow must be between 6s and 1h0m0s"
	StableWindow *metav1.Duration `json:"stableWindow,omitempty"`
	// Replicas is the autoscaler's current decision, written through the scale
	// subresource. Users do not set it. It is 0 until the autoscaler first
	// decides; the replicas that run are always clamped to [minReplicas, maxReplicas].
	// +optional
	// +kubebuilder:default=0
	Replicas *int32 `json:"replicas,omitempty"`
}

// Timeouts bound how long a request may take.
type Timeouts struct {
	// Request is the longest a request (including a stream) may run.
	// +optional
	// +kubebuilder:default="300s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="self.matches('^-?(0|([0-9]+([.][0-9]*)?(ns|us|ms|s|m|h))+)$')",message="request timeout must be a duration such as 300s or 10m"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^-?(0|([0-9]+([.][0-9]*)?(ns|us|ms|s|m|h))+)$') || duration(self) > duration('0s')",message="request timeout must be positive"
	Request *metav1.Duration `json:"request,omitempty"`
	// ColdStart is the longest a request is held while the agent scales from zero.
	// +optional
	// +kubebuilder:default="60s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="self.matches('^-?(0|([0-9]+([.][0-9]*)?(ns|us|ms|s|m|h))+)$')",message="coldStart timeout must be a duration such as 60s or 2m"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^-?(0|([0-9]+([.][0-9]*)?(ns|us|ms|s|m|h))+)$') || duration(self) > duration('0s')",message="coldStart timeout must be positive"
	ColdStart *metav1.Duration `json:"coldStart,omitempty"`
}

// AgentStatus is what Flint observed about an agent.
type AgentStatus struct {
	// Replicas is the number of replicas that exist. Always written (0
	// included), so kubectl shows 0 rather than <none> at zero.
	// +optional
	Replicas int32 `json:"replicas"`
	// ReadyReplicas is the number of replicas that can serve.
	// +optional
	ReadyReplicas int32 `json:"readyReplicas,omitempty"`
	// DesiredReplicas is the autoscaler's latest decision.
	// +optional
	DesiredReplicas int32 `json:"desiredReplicas,omitempty"`
	// MaxReplicas is the effective replica ceiling: spec.scaling.maxReplicas
	// or its default.
	// +optional
	MaxReplicas int32 `json:"maxReplicas,omitempty"`
	// Selector is the label selector of the agent's pods, for the scale subresource.
	// +optional
	Selector string `json:"selector,omitempty"`
	// LastInvocationAt is when a request last reached the agent (coalesced).
	// +optional
	LastInvocationAt *metav1.Time `json:"lastInvocationAt,omitempty"`
	// URL is where the agent is invoked through the gateway.
	// +optional
	URL string `json:"url,omitempty"`
	// LastFailure is the last failure an agent's replica reported (an image
	// that cannot be pulled, a crash loop). It is kept after the agent scales
	// to zero, so the Ready condition still says what is wrong, until a
	// replica turns ready or the pod template changes.
	// +optional
	LastFailure *AgentFailure `json:"lastFailure,omitempty"`
	// ObservedGeneration is the generation last reconciled.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions: Ready, ScaledToZero and GracefulShutdown.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// AgentFailure is why an agent's last replica could not serve.
type AgentFailure struct {
	// Reason is the kubelet's or scheduler's, e.g. ImagePullBackOff.
	Reason string `json:"reason"`
	// Message names the pod and container and what went wrong.
	// +optional
	Message string `json:"message,omitempty"`
	// PodTemplate identifies the pod template the failure happened with
	// (a hash): a new template gets a fresh start.
	// +optional
	PodTemplate string `json:"podTemplate,omitempty"`
}

// AgentList is a list of Agents.
//
// +kubebuilder:object:root=true
type AgentList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Agent `json:"items"`
}
