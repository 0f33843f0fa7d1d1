package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/flint-dev/flint/internal/agentfile"
	"github.com/flint-dev/flint/internal/autoscaler"
	"github.com/flint-dev/flint/internal/gateway"
	"github.com/flint-dev/flint/internal/hostcheck"
	"github.com/flint-dev/flint/internal/platform"
	"github.com/flint-dev/flint/internal/platform/local"
)

type upConfig struct {
	Files           stringList
	ShutdownTimeout time.Duration
	ExitWithParent  bool
	Gateway         gateway.Config
	Local           local.Config
	Autoscaler      autoscaler.LoopConfig
	Log             logConfig
}

const upSynopsis = `Run agents on this machine: loads Agent YAML from each PATH (a file, or a
directory searched recursively; YAML files there that define no Agent are
skipped), starts the gateway and the autoscaler, and runs each replica as a
child process behind its own sidecar. Agents scale from zero on their first
request and back to zero when idle. Ctrl-C stops Flint after the requests in
flight (at most -shutdown-timeout); a second Ctrl-C stops it at once.

Examples:
  flint up examples/
  flint up -f examples/echo -f examples/mcp-go -addr 127.0.0.1:9090`

func runUp(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := upConfig{
		ShutdownTimeout: 30 * time.Second,
		ExitWithParent:  true,
		Gateway:         gateway.DefaultConfig(),
		Local:           local.DefaultConfig(),
		Autoscaler:      autoscaler.LoopConfig{},
	}
	fs := newFlagSet("up", upSynopsis, stderr)
	fs.Usage = usageWithArgs(fs, "up [PATH...] [-f PATH...]", upSynopsis)
	fs.Var(&cfg.Files, "f", "Agent YAML file or directory (repeatable; the same as giving PATH)")
	fs.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", cfg.ShutdownTimeout, "on SIGINT/SIGTERM, how long in-flight requests and replicas get to finish")
	fs.BoolVar(&cfg.ExitWithParent, "exit-with-parent", cfg.ExitWithParent, "stop (as on SIGTERM) when the process that started flint up exits, e.g. a killed `go run`; -exit-with-parent=false to outlive it (nohup)")
	cfg.Gateway.RegisterFlags(fs)
	cfg.Local.RegisterFlags(fs)
	cfg.Autoscaler.RegisterFlags(fs)
	cfg.Log.RegisterFlags(fs)
	paths, err := parseWithArgs(fs, args)
	if err != nil {
		return err
	}
	cfg.Files = append(cfg.Files, paths...)
	if len(cfg.Files) == 0 {
		fmt.Fprintln(stderr, "flint up: give the agents to run: a YAML file or a directory, such as `flint up examples/`")
		return errUsage
	}
	if cfg.ExitWithParent {
		if err := local.ExitWithParent(syscall.SIGTERM); err != nil {
			return fmt.Errorf("-exit-with-parent: %w", err)
		}
	}
	log, err := cfg.Log.logger(stderr)
	if err != nil {
		return err
	}
	if err := errors.Join(cfg.Gateway.Validate(), cfg.Local.Validate(), cfg.Autoscaler.Validate()); err != nil {
		return err
	}
	set, err := agentfile.LoadAll(cfg.Files)
	if err != nil {
		return err
	}
	if len(set.Skipped) > 0 {
		fmt.Fprintf(stderr, "flint up: skipped %s that define no Agent: %s\n", plural(len(set.Skipped), "YAML file"), listSome(set.Skipped, 5))
	}
	if cfg.Local.Output == nil {
		cfg.Local.Output = stderr
	}
	// Host reaches a stdio bridge unchanged: it accepts what the gateway does.
	hosts, err := hostcheck.New(cfg.Gateway.Addr, cfg.Gateway.PublicURL, cfg.Gateway.AllowedHosts)
	if err != nil {
		return fmt.Errorf("-allowed-hosts: %w", err)
	}
	cfg.Local.BridgeAllowedHosts = hosts.Names()
	stopTracing, err := setupTracing(ctx, "flint", log, stderr) // OTEL_* env; off by default
	if err != nil {
		return err
	}
	defer stopTracing()
	return serveLocal(ctx, cfg, set.Agents, log, stdout)
}

// serveLocal wires the local runtime, the autoscaler and the gateway
// together and runs them until ctx ends.
func serveLocal(ctx context.Context, cfg upConfig, loaded []agentfile.Loaded, log *slog.Logger, stdout io.Writer) error {
	rt, err := local.New(cfg.Local, loaded, log)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	// The gateway pokes the autoscaler and the autoscaler reads the
	// gateway's demand; the lazy scaler breaks the construction cycle.
	var scaler lazyScaler
	gw, err := gateway.New(cfg.Gateway, rt, &scaler, log, reg)
	if err != nil {
		return err
	}
	defer gw.Close()
	loop, err := autoscaler.NewLoop(cfg.Autoscaler, rt, gw, log, reg)
	if err != nil {
		return err
	}
	scaler.loop = loop
	gw.SetDecisionSource(loop) // describe and the dashboard show the decisions

	ln, err := listenGateway(cfg.Gateway.Addr)
	if err != nil {
		return err
	}
	srv := gw.ServingServer()
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	loopCtx, stopLoop := context.WithCancel(context.WithoutCancel(ctx))
	loopDone := make(chan struct{})
	go func() { defer close(loopDone); _ = loop.Run(loopCtx) }()
	gwDone := make(chan struct{})
	go func() { defer close(gwDone); gw.Run(loopCtx) }() // the dashboard's history
	defer func() { stopLoop(); <-gwDone }()

	printBanner(stdout, "http://"+ln.Addr().String(), rt.Agents())
	log.Info("flint is up", "gateway", ln.Addr().String(), "agents", len(loaded))

	select {
	case <-ctx.Done():
	case err := <-serveErr:
		stopLoop()
		<-loopDone
		_ = rt.Shutdown(context.Background())
		return fmt.Errorf("gateway: %w", err)
	}
	return shutdownLocal(cfg, srv, gw, rt, log, stopLoop, loopDone)
}

// lazyScaler forwards pokes to the autoscaler once it exists.
type lazyScaler struct{ loop *autoscaler.Loop }

func (s *lazyScaler) Poke(key platform.AgentKey) {
	if s.loop != nil {
		s.loop.Poke(key)
	}
}
