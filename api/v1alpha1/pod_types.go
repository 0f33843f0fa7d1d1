package v1alpha1

import corev1 "k8s.io/api/core/v1"

// ReservedPrefix starts the names Flint gives its own volumes in an agent's
// pod (and its own labels' keys), so an Agent cannot collide with them.
const ReservedPrefix = "flint-"

// AgentPod is the pod-level part of a core/v1 PodSpec that agents need, as
// Knative Serving embeds it. Flint owns the rest: the containers besides
// the agent's, restartPolicy, the grace period (derived from the drain and
// the request timeout), service links and host namespaces.
//
// The CEL rules stay on small fields (names, keys) so their estimated cost
// stays within the API server's budget however large the embedded types are.
type AgentPod struct {
	// Labels are added to the agent's pods. flint.dev/ keys and
	// app.kubernetes.io/managed-by are Flint's.
	// +optional
	// +kubebuilder:validation:MaxProperties=64
	// +kubebuilder:validation:XValidation:rule="self.all(k, !k.startsWith('flint.dev/') && k != 'app.kubernetes.io/managed-by')",message="pod label keys under flint.dev/ and app.kubernetes.io/managed-by are set by Flint: use other keys"
	Labels map[string]string `json:"labels,omitempty"`
	// Annotations are added to the agent's pods.
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`
	// ServiceAccountName is the service account the pods run as (default: the namespace's "default").
	// +optional
	ServiceAccountName string `json:"serviceAccountName,omitempty"`
	// AutomountServiceAccountToken mounts the service account's API token
	// into the agent container. Off by default: agents run arbitrary code
	// and most have no use for API credentials.
	// +optional
	AutomountServiceAccountToken *bool `json:"automountServiceAccountToken,omitempty"`
	// ImagePullSecrets name Secrets holding credentials for private registries.
	// +optional
	ImagePullSecrets []corev1.LocalObjectReference `json:"imagePullSecrets,omitempty"`
	// Volumes the agent container can mount with container.volumeMounts.
	// Names starting with flint- are Flint's.
	// +optional
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:XValidation:rule="self.all(v, !v.name.startsWith('flint-'))",message="volume names starting with flint- are used by Flint: rename the volume"
	Volumes []corev1.Volume `json:"volumes,omitempty"`
	// NodeSelector constrains the nodes the pods run on.
	// +optional
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`
	// Tolerations let the pods run on tainted nodes (e.g. GPU nodes).
	// +optional
	Tolerations []corev1.Toleration `json:"tolerations,omitempty"`
	// Affinity holds node and pod (anti-)affinity rules.
	// +optional
	Affinity *corev1.Affinity `json:"affinity,omitempty"`
	// TopologySpreadConstraints spread the replicas across zones or nodes.
	// +optional
	TopologySpreadConstraints []corev1.TopologySpreadConstraint `json:"topologySpreadConstraints,omitempty"`
	// RuntimeClassName selects a container runtime (e.g. gVisor, Kata, nvidia).
	// +optional
	RuntimeClassName *string `json:"runtimeClassName,omitempty"`
	// PriorityClassName sets the pods' scheduling priority.
	// +optional
	PriorityClassName string `json:"priorityClassName,omitempty"`
	// SecurityContext of the pods. Unset, runAsNonRoot and a RuntimeDefault
	// seccomp profile apply (Pod Security "restricted"); no UID is imposed:
	// the image's user runs unless runAsUser is set.
	// +optional
	SecurityContext *corev1.PodSecurityContext `json:"securityContext,omitempty"`
}
