package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/flint-dev/flint/api/v1alpha1"
	"github.com/flint-dev/flint/internal/agentfile"
	"github.com/flint-dev/flint/internal/autoscaler"
	"github.com/flint-dev/flint/internal/gateway"
	"github.com/flint-dev/flint/internal/platform"
	"github.com/flint-dev/flint/internal/platform/local"
)

type upConfig struct {
	Files           string
	ShutdownTimeout time.Duration
	Gateway         gateway.Config
	Local           local.Config
	Autoscaler      autoscaler.LoopConfig
	Log             logConfig
}

const upSynopsis = `Run agents on this machine: loads Agent YAML from -f (a file or a directory,
searched recursively), starts the gateway and the autoscaler, and runs each
replica as a child process behind its own sidecar. Agents scale from zero on
their first request and back to zero when idle.`

func runUp(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := upConfig{
		ShutdownTimeout: 30 * time.Second,
		Gateway:         gateway.DefaultConfig(),
		Local:           local.DefaultConfig(),
		Autoscaler:      autoscaler.LoopConfig{},
	}
	fs := newFlagSet("up", upSynopsis, stderr)
	fs.StringVar(&cfg.Files, "f", "", "Agent YAML file or directory (required)")
	fs.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", cfg.ShutdownTimeout, "on SIGINT/SIGTERM, how long in-flight requests and replicas get to finish")
	cfg.Gateway.RegisterFlags(fs)
	cfg.Local.RegisterFlags(fs)
	cfg.Autoscaler.RegisterFlags(fs)
	cfg.Log.RegisterFlags(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if cfg.Files == "" {
		fmt.Fprintln(stderr, "-f is required: point it at an Agent YAML file or a directory such as examples/")
		return errUsage
	}
	log, err := cfg.Log.logger(stderr)
	if err != nil {
		return err
	}
	if err := errors.Join(cfg.Gateway.Validate(), cfg.Local.Validate(), cfg.Autoscaler.Validate()); err != nil {
		return err
	}
	loaded, err := agentfile.Load(cfg.Files)
	if err != nil {
		return err
	}
	if len(loaded) == 0 {
		return fmt.Errorf("no Agent found in %s: add a YAML file with kind: Agent", cfg.Files)
	}
	if cfg.Local.Output == nil {
		cfg.Local.Output = stderr
	}
	stopTracing, err := setupTracing(ctx, "flint", log, stderr) // OTEL_* env; off by default
	if err != nil {
		return err
	}
	defer stopTracing()
	return serveLocal(ctx, cfg, loaded, log, stdout)
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

	ln, err := net.Listen("tcp", cfg.Gateway.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w (is another flint running? pick another -addr)", cfg.Gateway.Addr, err)
	}
	srv := gw.Server()
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
	log.Info("shutting down: finishing in-flight requests, then stopping replicas")
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Warn("gateway shutdown", "error", err)
	}
	stopLoop()
	<-loopDone
	if err := rt.Shutdown(sctx); err != nil {
		return err
	}
	log.Info("stopped")
	return nil
}

// lazyScaler forwards pokes to the autoscaler once it exists.
type lazyScaler struct{ loop *autoscaler.Loop }

func (s *lazyScaler) Poke(key platform.AgentKey) {
	if s.loop != nil {
		s.loop.Poke(key)
	}
}

func printBanner(w io.Writer, base string, agents []*v1alpha1.Agent) {
	fmt.Fprintf(w, "Flint is up. Gateway: %s\n\n", base)
	for _, a := range agents {
		fmt.Fprintf(w, "  %-24s %-5s %s/v1/agents/%s/%s/\n", a.Namespace+"/"+a.Name, a.Spec.Protocol, base, a.Namespace, a.Name)
	}
	if len(agents) > 0 {
		a := agents[0]
		fmt.Fprintf(w, "\nTry:\n  curl %s/v1/agents/%s/%s/hello\n\n", base, a.Namespace, a.Name)
	}
}
