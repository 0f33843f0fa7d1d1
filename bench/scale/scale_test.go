package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/flint-dev/flint/internal/testenv"
	"github.com/flint-dev/flint/test/cluster/podnet"
)

// TestMain builds flint, then runs the tests in a pod network namespace
// (see main).
func TestMain(m *testing.M) {
	ctrllog.SetLogger(logr.Discard())
	if podnet.Inside() {
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "flint-bench-scale-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := 1
	if err := testenv.Build(filepath.Join(dir, "flint"), "./cmd/flint"); err != nil {
		fmt.Fprintln(os.Stderr, err)
	} else {
		code = podnet.Run(binDirEnv + "=" + dir)
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// TestScaleSmall runs the benchmark at a test's size: it shows that every
// measurement works against the real control plane and processes, and
// checks what must hold at any size and load (bounds on speed are the
// benchmark's, not the test's): every agent reconciled, every gateway
// ready with every agent, every slice change routed by every gateway,
// traffic served, and no API write from an idle gateway.
func TestScaleSmall(t *testing.T) {
	bin := filepath.Join(os.Getenv(binDirEnv), "flint")
	cfg := config{Flint: bin, Agents: 24, Namespaces: 3, PerAgent: 3, Gateways: 2, MoreGateways: 3,
		Active: 3, Changes: 10, Settle: 2 * time.Second, Window: 3 * time.Second, Timeout: 3 * time.Minute,
		Log: t.Logf}
	r, err := run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.GatewayReady) != cfg.Gateways {
		t.Errorf("%d gateways ready, want %d", len(r.GatewayReady), cfg.Gateways)
	}
	if r.Reconcile <= 0 {
		t.Errorf("reconcile time %s", r.Reconcile)
	}
	if got, want := len(r.Propagation), cfg.Changes*cfg.Gateways; got != want {
		t.Errorf("%d propagation samples, want %d", got, want)
	}
	for _, name := range []string{"manager", "gateway-0", "gateway-1", "gateway-2"} {
		if r.RSS[name] <= 0 {
			t.Errorf("no RSS for %s: %v", name, r.RSS)
		}
	}
	if r.ActiveOK == 0 || r.ActiveFailed > 0 {
		t.Errorf("active agents: %d requests ok, %d failed; want all ok", r.ActiveOK, r.ActiveFailed)
	}
	if n := sumOf(r.Idle.writes, "gateway-"); n > 0 {
		t.Errorf("idle gateways wrote to the API server %d times: %v", n, r.Idle.writes)
	}
	// A Deployment and a Service per agent at least: the audit log counts.
	if n := r.TotalWrites["manager"]; n < 2*cfg.Agents {
		t.Errorf("the audit log has %d writes by the manager, want at least %d: %v", n, 2*cfg.Agents, r.TotalWrites)
	}
	if r.More == nil || len(r.More.cpu) != 1+cfg.MoreGateways {
		t.Errorf("demand collection phase with %d gateways: %+v", cfg.MoreGateways, r.More)
	}
	report(t.Output(), []*result{r})
}
