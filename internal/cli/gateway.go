package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/flint-dev/flint/api/v1alpha1"
	"github.com/flint-dev/flint/internal/agentfile"
	"github.com/flint-dev/flint/internal/gateway"
	"github.com/flint-dev/flint/internal/platform/static"
)

const gatewaySynopsis = `Route invocations /v1/agents/{namespace}/{name}/... to agents' replicas.
With -f and -replica it serves agents from YAML in front of sidecars ('flint
proxy') started elsewhere, checking their readiness on their admin ports.
(On Kubernetes the gateway watches Agents and EndpointSlices instead.)`

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

var _ flag.Value = (*stringList)(nil)

func runGateway(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := gateway.DefaultConfig()
	var files string
	var replicas stringList
	checkInterval := time.Second
	shutdownTimeout := 30 * time.Second
	var logCfg logConfig
	fs := newFlagSet("gateway", gatewaySynopsis, stderr)
	fs.StringVar(&files, "f", "", "Agent YAML file or directory")
	fs.Var(&replicas, "replica", "a replica as namespace/name=SERVING_ADDR@ADMIN_ADDR (repeatable)")
	fs.DurationVar(&checkInterval, "check-interval", checkInterval, "how often each replica's readiness is checked")
	fs.DurationVar(&shutdownTimeout, "shutdown-timeout", shutdownTimeout, "on SIGTERM, how long in-flight requests get to finish")
	cfg.RegisterFlags(fs)
	logCfg.RegisterFlags(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	log, err := logCfg.logger(stderr)
	if err != nil {
		return err
	}
	if files == "" {
		fmt.Fprintln(stderr, "-f is required: point it at the Agent YAML the replicas run")
		return errUsage
	}
	if checkInterval <= 0 {
		return fmt.Errorf("-check-interval is %s: it must be positive", checkInterval)
	}
	loaded, err := agentfile.Load(files)
	if err != nil {
		return err
	}
	eps, err := static.ParseReplicas(replicas)
	if err != nil {
		return err
	}
	agents := make([]*v1alpha1.Agent, len(loaded))
	for i, l := range loaded {
		agents[i] = l.Agent
	}
	p, err := static.New(agents, eps, checkInterval, log)
	if err != nil {
		return err
	}
	stopTracing, err := setupTracing(ctx, "flint-gateway", log, stderr) // OTEL_* env; off by default
	if err != nil {
		return err
	}
	defer stopTracing()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	gw, err := gateway.New(cfg, p, nil, log, reg)
	if err != nil {
		return err
	}
	defer gw.Close()
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	pctx, stopChecks := context.WithCancel(context.WithoutCancel(ctx))
	defer stopChecks()
	go func() { _ = p.Run(pctx) }()
	go gw.Run(pctx) // the dashboard's history
	srv := gw.Server()
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	fmt.Fprintf(stdout, "flint gateway listening on http://%s\n", ln.Addr())
	select {
	case <-ctx.Done():
	case err := <-serveErr:
		return fmt.Errorf("gateway: %w", err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("gateway shutdown: %w", err)
	}
	return nil
}
