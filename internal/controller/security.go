package controller

import (
	corev1 "k8s.io/api/core/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"

	"github.com/flint-dev/flint/api/v1alpha1"
)

// Agents' pods meet the Pod Security "restricted" level unless the Agent
// asks otherwise: every field the user leaves unset gets the restricted
// value, every field the user sets is kept. No UID is imposed: the kubelet
// runs the image's own user and, with runAsNonRoot, refuses one that is
// root (OpenShift's restricted-v2 assigns UIDs itself and refuses a fixed one).

// nonRootUID is the sidecar's user only when the Agent makes the pod run as
// root (spec.pod.securityContext.runAsUser: 0): the sidecar never runs as
// root, and the flint image's own user (distroless "nonroot") is this one.
const nonRootUID = 65532

// podSecurityContext is the Agent's pod security context with
// runAsNonRoot and a RuntimeDefault seccomp profile where it sets neither.
// An Agent that runs a container as root (runAsUser: 0) is taken at its
// word: runAsNonRoot is not forced on it.
func podSecurityContext(a *v1alpha1.Agent) *corev1.PodSecurityContext {
	sc := &corev1.PodSecurityContext{}
	if a.Spec.Pod != nil && a.Spec.Pod.SecurityContext != nil {
		sc = a.Spec.Pod.SecurityContext.DeepCopy()
	}
	ctr := a.Spec.Container.SecurityContext
	asksForRoot := isZero(sc.RunAsUser) || (ctr != nil && isZero(ctr.RunAsUser))
	if sc.RunAsNonRoot == nil && !asksForRoot {
		sc.RunAsNonRoot = ptr(true)
	}
	if sc.SeccompProfile == nil {
		sc.SeccompProfile = &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}
	}
	return sc
}

// agentSecurityContext is the agent container's security context: no
// privilege escalation and no capabilities unless the Agent says otherwise.
// A privileged container keeps its escalation (the API refuses privileged
// without it).
func agentSecurityContext(a *v1alpha1.Agent) *corev1.SecurityContext {
	sc := &corev1.SecurityContext{}
	if a.Spec.Container.SecurityContext != nil {
		sc = a.Spec.Container.SecurityContext.DeepCopy()
	}
	privileged := sc.Privileged != nil && *sc.Privileged
	if sc.AllowPrivilegeEscalation == nil && !privileged {
		sc.AllowPrivilegeEscalation = ptr(false)
	}
	if sc.Capabilities == nil {
		sc.Capabilities = &corev1.Capabilities{}
	}
	if len(sc.Capabilities.Drop) == 0 && !privileged {
		sc.Capabilities.Drop = []corev1.Capability{"ALL"}
	}
	return sc
}

// sidecarSecurityContext is Flint's own container's: restricted whatever
// the Agent sets at pod level, and read-only.
func sidecarSecurityContext(a *v1alpha1.Agent) *corev1ac.SecurityContextApplyConfiguration {
	sc := corev1ac.SecurityContext().
		WithRunAsNonRoot(true).
		WithAllowPrivilegeEscalation(false).
		WithReadOnlyRootFilesystem(true).
		WithCapabilities(corev1ac.Capabilities().WithDrop("ALL")).
		WithSeccompProfile(corev1ac.SeccompProfile().WithType(corev1.SeccompProfileTypeRuntimeDefault))
	if p := a.Spec.Pod; p != nil && p.SecurityContext != nil && isZero(p.SecurityContext.RunAsUser) {
		sc.WithRunAsUser(nonRootUID)
	}
	return sc
}

func isZero(p *int64) bool { return p != nil && *p == 0 }

func ptr[T any](v T) *T { return &v }
