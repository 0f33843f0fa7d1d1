package controller

import (
	"net/url"
	"testing"
	"time"

	"github.com/flint-dev/flint/api/v1alpha1"
	"github.com/flint-dev/flint/internal/wire"
)

// The sidecar's kubelet probes are shaped so that a normal cold start
// fails none (each failure is a kubelet Unhealthy event): no probe before
// the sidecar listens, and readiness waits for the agent's first answer
// within the probe's timeout; afterwards one failure a second still takes
// the replica out at once.
func TestSidecarProbesDoNotFailDuringAStart(t *testing.T) {
	pod, err := render(testConfig(), testAgent("ns", "echo"))
	if err != nil {
		t.Fatal(err)
	}
	sc := pod.Spec.InitContainers[0]
	if sc.Name != SidecarContainerName {
		t.Fatalf("first init container is %q", sc.Name)
	}
	rp := sc.ReadinessProbe
	if rp == nil || rp.HTTPGet == nil || rp.HTTPGet.Port.StrVal != v1alpha1.AdminPortName {
		t.Fatalf("sidecar readiness probe %+v", rp)
	}
	u, err := url.Parse(rp.HTTPGet.Path)
	if err != nil || u.Path != wire.PathReadyz {
		t.Fatalf("readiness path %q", rp.HTTPGet.Path)
	}
	wait, err := time.ParseDuration(u.Query().Get(wire.QueryReadyzWait))
	if err != nil {
		t.Fatalf("readiness path %q sets no wait: %v", rp.HTTPGet.Path, err)
	}
	if timeout := time.Duration(rp.TimeoutSeconds) * time.Second; wait <= 0 || wait >= timeout {
		t.Errorf("readiness waits %s with a %s timeout: the wait must end first, or the kubelet counts a timeout", wait, timeout)
	}
	if rp.InitialDelaySeconds < 1 {
		t.Errorf("readiness initialDelaySeconds %d: the first probe would run before the sidecar listens", rp.InitialDelaySeconds)
	}
	if rp.PeriodSeconds != 1 || rp.FailureThreshold != 1 {
		t.Errorf("readiness period %ds, failure threshold %d: a draining replica must leave the endpoints within a second",
			rp.PeriodSeconds, rp.FailureThreshold)
	}
	if lp := sc.LivenessProbe; lp == nil || lp.HTTPGet == nil || lp.HTTPGet.Path != wire.PathHealthz || lp.InitialDelaySeconds < 1 {
		t.Errorf("sidecar liveness probe %+v: /healthz, not before the sidecar listens", lp)
	}
	if sc.StartupProbe != nil {
		t.Error("a startup probe on the native sidecar would hold the agent's start until it passes")
	}
}
