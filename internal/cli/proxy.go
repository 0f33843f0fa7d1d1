package cli

import (
	"context"
	"fmt"
	"io"

	"github.com/flint-dev/flint/internal/proxy"
)

const proxySynopsis = `The per-replica sidecar. It serves traffic for one agent replica on the
serving address, forwarding to the agent on -upstream with at most
-concurrency requests in flight (503 + Retry-After beyond the queue), and
serves /healthz, /readyz, /stats, /metrics, /drain and /wait-for-drain on the
admin address only. On SIGTERM it fails readiness at once, keeps serving for
-drain-delay while endpoints are removed, finishes in-flight requests and
exits 0.`

func runProxy(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	tuneDataPlaneGC() // gc.go
	cfg := proxy.DefaultConfig()
	var logCfg logConfig
	var pprofCfg pprofConfig
	fs := newFlagSet("proxy", proxySynopsis, stderr)
	cfg.RegisterFlags(fs)
	logCfg.RegisterFlags(fs)
	pprofCfg.RegisterFlags(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	log, err := logCfg.logger(stderr)
	if err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	if err := pprofCfg.serve(ctx, log); err != nil {
		return err
	}
	stopTracing, err := setupTracing(ctx, "flint-proxy", log, stderr) // OTEL_* env; off by default
	if err != nil {
		return err
	}
	defer stopTracing()
	sc, err := proxy.New(cfg, log)
	if err != nil {
		return err
	}
	if err := sc.Listen(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "flint proxy serving on %s, admin on %s, agent at %s\n", sc.ServingAddr(), sc.AdminAddr(), cfg.UpstreamAddr)
	return sc.Serve(ctx)
}
