package controller

import (
	"net"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"

	"github.com/flint-dev/flint/api/v1alpha1"
	"github.com/flint-dev/flint/internal/wire"
)

// The sidecar's requests are small and it has no limits: a CPU limit would
// throttle the proxy and add latency to every request of the agent.
var (
	sidecarCPURequest    = resource.MustParse("25m")
	sidecarMemoryRequest = resource.MustParse("32Mi")
	// bridgeVolumeLimit holds the flint binary (about 60MB) with room to grow.
	bridgeVolumeLimit = resource.MustParse("256Mi")
)

// sidecarArgs are the `flint proxy` arguments for one agent. The sidecar
// listens on all addresses so the gateway and the kubelet reach it on the pod
// IP; the agent is reached on loopback only.
func (c Config) sidecarArgs(a *v1alpha1.Agent) []string {
	budget := c.shutdownBudget(a)
	// MCP sessions hold a stream open for as long as the client keeps the
	// session: a request timeout would cut them (local mode sets none either).
	requestTimeout := a.Spec.RequestTimeout()
	if a.Spec.Protocol == v1alpha1.ProtocolMCP {
		requestTimeout = 0
	}
	args := []string{
		"proxy",
		"-serving-addr=:" + strconv.Itoa(v1alpha1.ServingPort),
		"-admin-addr=:" + strconv.Itoa(v1alpha1.AdminPort),
		"-upstream=" + net.JoinHostPort("127.0.0.1", strconv.Itoa(int(a.Spec.Container.Port))),
		"-concurrency=" + strconv.Itoa(int(a.Spec.Concurrency)),
		"-request-timeout=" + requestTimeout.String(),
		"-drain-delay=" + c.DrainDelay.String(),
		"-drain-timeout=" + budget.DrainTimeout.String(),
		// The sidecar checks again that its drain fits in the grace period,
		// so a manager/sidecar version skew cannot silently break shutdown.
		"-termination-grace-period=" + budget.Grace.String(),
	}
	if a.Spec.Concurrency > 0 && c.SidecarQueueDepth > 0 {
		args = append(args, "-queue-depth="+strconv.Itoa(c.SidecarQueueDepth))
	}
	if path, _ := sidecarProbe(a); path != "" {
		args = append(args, "-probe-path="+path)
	}
	if c.gatewayToken != nil {
		args = append(args, "-gateway-token-file="+gatewayTokenFile())
	}
	if c.SidecarTLS.Enabled {
		args = append(args, sidecarTLSArgs()...)
	}
	return args
}

// sidecarProbe splits the agent's readiness probe between the sidecar and
// the kubelet. The sidecar probes the agent itself (every 50ms at start, so
// a replica is usable well before the kubelet's first period) with an HTTP
// GET of a path or a TCP connect, both on the agent's port: a probe of that
// shape is mirrored exactly and the agent container gets none. Any other
// probe (exec, gRPC, another port, HTTPS, headers) cannot be mirrored, so
// the kubelet runs it on the agent container as written, and the sidecar
// checks the port in the meantime; nothing the user wrote is dropped.
func sidecarProbe(a *v1alpha1.Agent) (path string, kubelet *corev1.Probe) {
	p := a.Spec.Container.ReadinessProbe
	if p == nil {
		if stdio, _ := stdioAgent(a); stdio {
			return "/healthz", nil // the bridge's: ready once it can start a child
		}
		return "", nil
	}
	onAgentPort := func(port intstr.IntOrString) bool {
		return port.Type == intstr.Int && port.IntVal == a.Spec.Container.Port
	}
	switch h := p.ProbeHandler; {
	case h.HTTPGet != nil && onAgentPort(h.HTTPGet.Port) && h.HTTPGet.Host == "" &&
		(h.HTTPGet.Scheme == "" || h.HTTPGet.Scheme == corev1.URISchemeHTTP) && len(h.HTTPGet.HTTPHeaders) == 0:
		path = h.HTTPGet.Path
		if path == "" {
			path = "/"
		}
		return path, nil
	case h.TCPSocket != nil && onAgentPort(h.TCPSocket.Port) && h.TCPSocket.Host == "":
		return "", nil // the sidecar's own check without a path
	}
	return "", p
}

// sidecarContainer is the `flint proxy` container. It is a native sidecar
// (an init container with restartPolicy Always): the kubelet starts it
// before the agent and stops it after the agent, so it never refuses
// traffic for an agent that is still there, nor forwards to one that is gone.
func (c Config) sidecarContainer(a *v1alpha1.Agent) *corev1ac.ContainerApplyConfiguration {
	admin := intstr.FromString(v1alpha1.AdminPortName)
	ctr := corev1ac.Container()
	if c.gatewayToken != nil {
		ctr.WithVolumeMounts(gatewayTokenMount())
	}
	if c.SidecarTLS.Enabled {
		ctr.WithVolumeMounts(sidecarTLSMount())
	}
	if _, userProbe := sidecarProbe(a); userProbe != nil {
		// The agent container carries the user's probe, so the sidecar's
		// own readiness is probed here (see readinessThroughSidecar).
		ctr.WithReadinessProbe(readinessThroughSidecar(intstr.FromString(v1alpha1.AdminPortName), readyzInitialDelay))
	}
	return ctr.
		WithName(SidecarContainerName).
		WithImage(c.SidecarImage).
		WithArgs(c.sidecarArgs(a)...).
		WithRestartPolicy(corev1.ContainerRestartPolicyAlways).
		WithPorts(
			corev1ac.ContainerPort().WithName(v1alpha1.ServingPortName).WithContainerPort(v1alpha1.ServingPort).WithProtocol(corev1.ProtocolTCP),
			corev1ac.ContainerPort().WithName(v1alpha1.AdminPortName).WithContainerPort(v1alpha1.AdminPort).WithProtocol(corev1.ProtocolTCP),
		).
		// /healthz stays green while draining, so liveness never kills a
		// sidecar in the middle of its drain. Its first check waits one
		// period: before then the sidecar may not listen yet, and a refused
		// check is a Warning event for nothing (liveness only needs to
		// catch a sidecar that stops answering later).
		WithLivenessProbe(corev1ac.Probe().
			WithHTTPGet(corev1ac.HTTPGetAction().WithPath(wire.PathHealthz).WithPort(admin)).
			WithInitialDelaySeconds(10).WithPeriodSeconds(10).WithTimeoutSeconds(5).WithFailureThreshold(3)).
		WithResources(corev1ac.ResourceRequirements().WithRequests(corev1.ResourceList{
			corev1.ResourceCPU:    sidecarCPURequest,
			corev1.ResourceMemory: sidecarMemoryRequest,
		})).
		WithSecurityContext(sidecarSecurityContext(a))
}

// readyzWait is how long the kubelet's readiness probe of a starting
// replica waits for the agent's first answer (wire.QueryReadyzWait), one
// second inside the probe's timeout.
const (
	readyzWait          = 9 * time.Second
	readyzProbeTimeout  = 10 // seconds
	readyzInitialDelay  = 1  // seconds, when probing the sidecar container itself
	readyzProbePeriod   = 1  // seconds
	readyzFailThreshold = 1
)

// readinessThroughSidecar is the kubelet's readiness probe of a replica:
// the sidecar's /readyz (its agent answers and it is not draining), shaped
// so that a normal cold start fails no probe, each failure being a Warning
// event (Unhealthy). With a plain 1s probe on the sidecar container the real
// node recorded 18 over 10 cold starts: "connection refused" from a first
// probe the kubelet ran the moment the sidecar started, before it listened,
// and 503s while the agent started.
//
//   - It is the agent container's probe (port by number: a probe resolves
//     port names in its own container), so the kubelet first runs it when
//     the agent container starts, after the native sidecar has started and
//     listens, and with no initial delay: the replica turns Ready as soon
//     as its agent answers. Only when the agent container carries a probe
//     of the user's that the sidecar cannot mirror (sidecarProbe) is it the
//     sidecar container's, with initialDelay so it runs once it listens.
//   - Until the agent has answered once, /readyz holds the probe (up to
//     readyzWait) and answers as soon as it does: a starting agent is a
//     slow success rather than a failure; a slower agent fails once per
//     ~10s instead of once per second.
//   - Then the 1s period and one failure take a replica whose agent stops
//     answering, or that starts draining, out of the endpoints at once:
//     /readyz answers without waiting from then on.
func readinessThroughSidecar(admin intstr.IntOrString, initialDelay int32) *corev1ac.ProbeApplyConfiguration {
	path := wire.PathReadyz + "?" + wire.QueryReadyzWait + "=" + readyzWait.String()
	return corev1ac.Probe().
		WithHTTPGet(corev1ac.HTTPGetAction().WithPath(path).WithPort(admin)).
		WithInitialDelaySeconds(initialDelay).WithPeriodSeconds(readyzProbePeriod).
		WithTimeoutSeconds(readyzProbeTimeout).WithFailureThreshold(readyzFailThreshold).WithSuccessThreshold(1)
}

// waitForDrainHook is the agent container's preStop: the kubelet runs it
// before signalling the agent, and it returns only once the sidecar has
// drained (it starts the drain too), so the agent outlives every request
// routed to it.
func waitForDrainHook() *corev1ac.LifecycleApplyConfiguration {
	return corev1ac.Lifecycle().WithPreStop(corev1ac.LifecycleHandler().
		WithHTTPGet(corev1ac.HTTPGetAction().
			WithPath(wire.PathWaitForDrain).
			WithPort(intstr.FromInt32(v1alpha1.AdminPort))))
}
