package autoscaler

import (
	"context"
	"log/slog"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/flint-dev/flint/api/v1alpha1"
	"github.com/flint-dev/flint/internal/platform"
	"github.com/flint-dev/flint/internal/platform/platformtest"
)

// loopTest is the set-up of a test of the running Loop: one agent on an
// in-memory platform, the gateway whose demand the test sets, and the
// registry the loop's metrics go to. Make it inside the synctest bubble
// (the loop's clock) and the fake sidecars, real listeners, outside; change
// what the loop should see at its first tick, then start it.
type loopTest struct {
	agent *v1alpha1.Agent
	key   platform.AgentKey
	p     *platformtest.Platform
	gw    *platformtest.GatewayDemand
	reg   *prometheus.Registry
	l     *Loop // set by start
}

// newLoopTest puts agent on a platform with the given ready replicas (its
// scale raised to their number) and a gateway with no demand yet.
func newLoopTest(agent *v1alpha1.Agent, ready ...platform.Endpoint) *loopTest {
	f := &loopTest{agent: agent, key: platform.KeyOf(agent), p: platformtest.New(agent), gw: &platformtest.GatewayDemand{}, reg: prometheus.NewRegistry()}
	if len(ready) > 0 {
		f.p.SetReady(f.key, ready...)
	}
	return f
}

// start runs a Loop over the fixture until the test (or its bubble) ends;
// its first tick runs at once.
func (f *loopTest) start(t *testing.T) *Loop {
	t.Helper()
	f.l = startLoop(t, f.p, f.gw, f.reg)
	return f.l
}

// deleteAgent deletes the agent from the platform, lets the next tick run
// and checks that the loop forgot it: no decisions kept, no
// desired_replicas series left.
func (f *loopTest) deleteAgent(t *testing.T) {
	t.Helper()
	f.p.RemoveAgent(f.key)
	time.Sleep(2 * time.Second)
	synctest.Wait()
	if d := f.l.Decisions(f.key); d != nil {
		t.Errorf("decisions of a deleted agent: %+v", d)
	}
	if n, _ := testutil.GatherAndCount(f.reg, "flint_autoscaler_desired_replicas"); n != 0 {
		t.Errorf("%d desired_replicas series left for a deleted agent", n)
	}
}

// startLoop runs a Loop until the test (or its bubble) ends.
func startLoop(t *testing.T, p Platform, d DemandSource, reg prometheus.Registerer) *Loop {
	t.Helper()
	l, err := NewLoop(LoopConfig{HTTPClient: noKeepAlive()}, p, d, slog.New(slog.DiscardHandler), reg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return l
}
