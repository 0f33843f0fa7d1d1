package controller

import (
	"net/url"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/flint-dev/flint/api/v1alpha1"
	"github.com/flint-dev/flint/internal/wire"
)

// checkReadyzProbe checks a kubelet readiness probe of the sidecar's
// /readyz: it waits for the agent's first answer within its timeout, and
// one failure a second takes the replica out.
func checkReadyzProbe(t *testing.T, where string, p *corev1.Probe, port intstr.IntOrString, initialDelay int32) {
	t.Helper()
	if p == nil || p.HTTPGet == nil || p.HTTPGet.Port != port {
		t.Fatalf("%s readiness probe %+v, want an HTTP GET on %s", where, p, port.String())
	}
	u, err := url.Parse(p.HTTPGet.Path)
	if err != nil || u.Path != wire.PathReadyz {
		t.Fatalf("%s readiness path %q", where, p.HTTPGet.Path)
	}
	wait, err := time.ParseDuration(u.Query().Get(wire.QueryReadyzWait))
	if err != nil {
		t.Fatalf("%s readiness path %q sets no wait: %v", where, p.HTTPGet.Path, err)
	}
	if timeout := time.Duration(p.TimeoutSeconds) * time.Second; wait <= 0 || wait >= timeout {
		t.Errorf("%s readiness waits %s with a %s timeout: the wait must end first, or the kubelet counts a timeout", where, wait, timeout)
	}
	if p.InitialDelaySeconds != initialDelay {
		t.Errorf("%s readiness initialDelaySeconds %d, want %d", where, p.InitialDelaySeconds, initialDelay)
	}
	if p.PeriodSeconds != 1 || p.FailureThreshold != 1 {
		t.Errorf("%s readiness period %ds, failure threshold %d: a draining replica must leave the endpoints within a second",
			where, p.PeriodSeconds, p.FailureThreshold)
	}
}

// The kubelet's probes are shaped so that a normal cold start fails none
// (each failure is a kubelet Unhealthy event). Readiness is the sidecar's
// /readyz, probed from the agent container, which starts after the native
// sidecar listens, so it needs no initial delay; liveness of the sidecar
// does not run before it listens.
func TestReadinessProbesDoNotFailDuringAStart(t *testing.T) {
	pod, err := render(testConfig(), testAgent("ns", "echo"))
	if err != nil {
		t.Fatal(err)
	}
	sc, ag := pod.Spec.InitContainers[0], pod.Spec.Containers[0]
	if sc.Name != SidecarContainerName || ag.Name != AgentContainerName {
		t.Fatalf("containers %q, %q", sc.Name, ag.Name)
	}
	// By number: a probe resolves port names in its own container.
	checkReadyzProbe(t, "agent container", ag.ReadinessProbe, intstr.FromInt32(v1alpha1.AdminPort), 0)
	if sc.ReadinessProbe != nil {
		t.Errorf("sidecar readiness probe %+v: the agent container's covers it", sc.ReadinessProbe)
	}
	if lp := sc.LivenessProbe; lp == nil || lp.HTTPGet == nil || lp.HTTPGet.Path != wire.PathHealthz || lp.InitialDelaySeconds < 1 {
		t.Errorf("sidecar liveness probe %+v: /healthz, not before the sidecar listens", lp)
	}
	if sc.StartupProbe != nil {
		t.Error("a startup probe on the native sidecar would hold the agent's start until it passes")
	}
}

// When the agent container carries the user's own probe (one the sidecar
// cannot run), the sidecar container is probed itself, from one second
// after it starts, when it listens.
func TestSidecarIsProbedWhenTheAgentCarriesTheUsersProbe(t *testing.T) {
	a := testAgent("ns", "exec")
	a.Spec.Container.ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"ready"}}}}
	pod, err := render(testConfig(), a)
	if err != nil {
		t.Fatal(err)
	}
	if got := pod.Spec.Containers[0].ReadinessProbe; got == nil || got.Exec == nil {
		t.Fatalf("agent container readiness probe %+v, want the user's", got)
	}
	checkReadyzProbe(t, "sidecar", pod.Spec.InitContainers[0].ReadinessProbe, intstr.FromString(v1alpha1.AdminPortName), readyzInitialDelay)
}
