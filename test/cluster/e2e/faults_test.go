package e2e

import (
	"net/http"
	"testing"
	"time"

	"github.com/flint-dev/flint/api/v1alpha1"
	"github.com/flint-dev/flint/internal/testenv"
)

// TestManagerRestartUnderLoad: the data plane does not depend on the
// manager. While it restarts, requests to a running agent all succeed;
// once it is back, its autoscaler has reconnected to the gateways and an
// agent at zero wakes on its first request.
func TestManagerRestartUnderLoad(t *testing.T) {
	ns := namespace(t)
	create(t, echoAgent(ns, "echo", func(a *v1alpha1.Agent) { a.Spec.Scaling.MinReplicas = ptr32(1) }))
	waitKnown(t, direct, ns, "echo")
	testenv.Await(t, waitTimeout, "the replica", func() (bool, string) {
		_, ready := pods(t, ns, "echo")
		return len(ready) == 1, testenv.DescribePods(ready)
	})
	l := startLoad(invokeURL(direct, ns, "echo", "/?sleep=20ms"), 30)
	time.Sleep(time.Second)
	stopped := time.Now()
	manager.stop()
	time.Sleep(2 * time.Second)
	restarted, err := startProcess("manager", bins.flint, manager.cmd.Args[1:]...)
	if err != nil {
		l.Stop()
		t.Fatal(err)
	}
	manager = restarted
	time.Sleep(2 * time.Second)
	l.Stop()
	t.Logf("manager down for %s under load: %s", time.Since(stopped).Round(time.Millisecond), l)
	if n := l.FailedBeyondOverload(); n > 0 || l.Count(http.StatusServiceUnavailable) > 0 {
		t.Errorf("requests failed while the manager restarted: %s", l)
	}

	create(t, echoAgent(ns, "cold", nil))
	waitScaledToZero(t, ns, "cold")
	waitKnown(t, direct, ns, "cold")
	status, body, firstByte, _ := timedGet(t, invokeURL(direct, ns, "cold", "/"))
	if status != http.StatusOK {
		t.Fatalf("cold start after the manager restarted: %d %s", status, body)
	}
	t.Logf("cold start after the manager restarted: %s", firstByte.Round(time.Millisecond))
}
