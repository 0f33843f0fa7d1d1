package controller

import (
	"net"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"

	"github.com/flint-dev/flint/api/v1alpha1"
	"github.com/flint-dev/flint/internal/proxy"
)

// The sidecar's requests are small and it has no limits: a CPU limit would
// throttle the proxy and add latency to every request of the agent.
var (
	sidecarCPURequest    = resource.MustParse("25m")
	sidecarMemoryRequest = resource.MustParse("32Mi")
)

// sidecarUID is the distroless "nonroot" user the flint image runs as.
const sidecarUID = 65532

// sidecarArgs are the `flint proxy` arguments for one agent. The sidecar
// listens on all addresses so the gateway and the kubelet reach it on the pod
// IP; the agent is reached on loopback only.
func (c Config) sidecarArgs(a *v1alpha1.Agent) []string {
	args := []string{
		"proxy",
		"-serving-addr=:" + strconv.Itoa(ServingPort),
		"-admin-addr=:" + strconv.Itoa(AdminPort),
		"-upstream=" + net.JoinHostPort("127.0.0.1", strconv.Itoa(int(a.Spec.Container.Port))),
		"-concurrency=" + strconv.Itoa(int(a.Spec.Concurrency)),
		"-request-timeout=" + a.Spec.RequestTimeout().String(),
		"-drain-delay=" + c.DrainDelay.String(),
		"-drain-timeout=" + c.DrainTimeout.String(),
		// The sidecar checks again that its drain fits in the grace period,
		// so a manager/sidecar version skew cannot silently break shutdown.
		"-termination-grace-period=" + c.TerminationGracePeriod().String(),
	}
	if a.Spec.Concurrency > 0 && c.SidecarQueueDepth > 0 {
		args = append(args, "-queue-depth="+strconv.Itoa(c.SidecarQueueDepth))
	}
	if path := probePath(a); path != "" {
		args = append(args, "-probe-path="+path)
	}
	return args
}

// probePath is the agent's HTTP readiness path, which the sidecar probes
// aggressively in place of the kubelet; other probe kinds fall back to the
// sidecar's TCP connect check on the agent's port.
func probePath(a *v1alpha1.Agent) string {
	if p := a.Spec.Container.ReadinessProbe; p != nil && p.HTTPGet != nil {
		return p.HTTPGet.Path
	}
	return ""
}

// sidecarContainer is the `flint proxy` container. It is a native sidecar
// (an init container with restartPolicy Always): the kubelet starts it
// before the agent and stops it after the agent, so it never refuses
// traffic for an agent that is still there, nor forwards to one that is gone.
func (c Config) sidecarContainer(a *v1alpha1.Agent) *corev1ac.ContainerApplyConfiguration {
	admin := intstr.FromString(AdminPortName)
	return corev1ac.Container().
		WithName(SidecarContainerName).
		WithImage(c.SidecarImage).
		WithArgs(c.sidecarArgs(a)...).
		WithRestartPolicy(corev1.ContainerRestartPolicyAlways).
		WithPorts(
			corev1ac.ContainerPort().WithName(ServingPortName).WithContainerPort(ServingPort).WithProtocol(corev1.ProtocolTCP),
			corev1ac.ContainerPort().WithName(AdminPortName).WithContainerPort(AdminPort).WithProtocol(corev1.ProtocolTCP),
		).
		// The kubelet's 1s period is the floor; the sidecar itself probes
		// the agent every 50ms at start. One failure is enough to go
		// unready: /readyz is local and cheap, and a draining sidecar must
		// leave the endpoints at once.
		WithReadinessProbe(corev1ac.Probe().
			WithHTTPGet(corev1ac.HTTPGetAction().WithPath(proxy.PathReadyz).WithPort(admin)).
			WithPeriodSeconds(1).WithTimeoutSeconds(1).WithFailureThreshold(1).WithSuccessThreshold(1)).
		// /healthz stays green while draining, so liveness never kills a
		// sidecar in the middle of its drain.
		WithLivenessProbe(corev1ac.Probe().
			WithHTTPGet(corev1ac.HTTPGetAction().WithPath(proxy.PathHealthz).WithPort(admin)).
			WithPeriodSeconds(10).WithTimeoutSeconds(2).WithFailureThreshold(3)).
		WithResources(corev1ac.ResourceRequirements().WithRequests(corev1.ResourceList{
			corev1.ResourceCPU:    sidecarCPURequest,
			corev1.ResourceMemory: sidecarMemoryRequest,
		})).
		WithSecurityContext(corev1ac.SecurityContext().
			WithRunAsNonRoot(true).
			WithRunAsUser(sidecarUID).
			WithAllowPrivilegeEscalation(false).
			WithReadOnlyRootFilesystem(true).
			WithCapabilities(corev1ac.Capabilities().WithDrop("ALL")))
}

// waitForDrainHook is the agent container's preStop: the kubelet runs it
// before signalling the agent, and it returns only once the sidecar has
// drained (it starts the drain too), so the agent outlives every request
// routed to it.
func waitForDrainHook() *corev1ac.LifecycleApplyConfiguration {
	return corev1ac.Lifecycle().WithPreStop(corev1ac.LifecycleHandler().
		WithHTTPGet(corev1ac.HTTPGetAction().
			WithPath(proxy.PathWaitForDrain).
			WithPort(intstr.FromInt32(AdminPort))))
}
