package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/flint-dev/flint/internal/demand"
	"github.com/flint-dev/flint/internal/gateway"
	"github.com/flint-dev/flint/internal/h1relay"
	"github.com/flint-dev/flint/internal/platform"
	"github.com/flint-dev/flint/internal/platform/kube"
)

const gatewaySynopsis = `Route invocations /v1/agents/{namespace}/{name}/... to agents' replicas.
In a cluster (the default) it watches Agents and EndpointSlices and routes
to pod IPs; -control-addr serves held requests to the manager's autoscaler.
With -f and -replica it instead serves agents from YAML in front of
sidecars ('flint proxy') started elsewhere, checking their readiness on
their admin ports.`

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

var _ flag.Value = (*stringList)(nil)

// gatewayFlags is every flag of `flint gateway` besides the gateway's own
// configuration.
type gatewayFlags struct {
	// Standalone mode.
	Files         string
	Replicas      stringList
	CheckInterval time.Duration
	// Kubernetes mode.
	Kube             kubeConnection
	Platform         kube.Config
	ControlAddr      string
	ControlTokenFile string
	AdminAddr        string

	DrainDelay      time.Duration
	ShutdownTimeout time.Duration
	Log             logConfig
	Pprof           pprofConfig // pprof.go
}

func runGateway(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	tuneDataPlaneGC() // gc.go
	cfg := gateway.DefaultConfig()
	f := gatewayFlags{CheckInterval: time.Second, ShutdownTimeout: 30 * time.Second,
		Kube: defaultKubeConnection(), Platform: kube.DefaultConfig()}
	fs := newFlagSet("gateway", gatewaySynopsis, stderr)
	fs.StringVar(&f.Files, "f", "", "Agent YAML file or directory (standalone mode: no cluster)")
	fs.Var(&f.Replicas, "replica", "a replica as namespace/name=SERVING_ADDR@ADMIN_ADDR (repeatable; standalone mode)")
	fs.DurationVar(&f.CheckInterval, "check-interval", f.CheckInterval, "how often each replica's readiness is checked (standalone mode)")
	f.Kube.RegisterFlags(fs)
	f.Platform.RegisterFlags(fs)
	f.Platform.RegisterRoutingFlags(fs)
	fs.StringVar(&f.ControlAddr, "control-addr", "", "`address` serving held and in-flight requests, and scale-from-zero pokes, to the manager's autoscaler (empty: off)")
	fs.StringVar(&f.ControlTokenFile, "control-token-file", "", "`file` with the secret the manager presents on -control-addr (required with it)")
	fs.StringVar(&f.AdminAddr, "admin-addr", "", "`address` of /metrics, the dashboard, the agent listing and the probes, apart from invocations (e.g. a port a public Service does not expose); empty: served on -addr")
	fs.DurationVar(&f.DrainDelay, "drain-delay", 0, "on SIGTERM, how long to keep serving with /readyz failing and connections closed after each response, so load balancers stop sending here before the gateway stops listening (behind a Service: a few seconds)")
	fs.DurationVar(&f.ShutdownTimeout, "shutdown-timeout", f.ShutdownTimeout, "on SIGTERM, after -drain-delay, how long in-flight requests get to finish")
	cfg.RegisterFlags(fs)
	f.Log.RegisterFlags(fs)
	f.Pprof.RegisterFlags(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	log, err := f.Log.logger(stderr)
	if err != nil {
		return err
	}
	if err := f.Pprof.serve(ctx, log); err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	if f.DrainDelay < 0 {
		return fmt.Errorf("-drain-delay is %s: it must be 0 (off) or positive", f.DrainDelay)
	}
	var control *demand.Server
	if f.ControlAddr != "" {
		if f.ControlTokenFile == "" {
			return errors.New("-control-addr needs -control-token-file: the manager proves itself with that secret")
		}
		tokens, err := demand.WatchToken(f.ControlTokenFile, log) // a rotation applies without a restart
		if err != nil {
			return fmt.Errorf("-control-token-file: %w", err)
		}
		control = demand.NewFollowingServer(tokens.Get, log)
	}

	pctx, stopPlatform := context.WithCancel(context.WithoutCancel(ctx))
	var platformDone []chan struct{}
	defer func() {
		stopPlatform()
		for _, d := range platformDone { // the last invocation times are written
			<-d
		}
	}()
	goPlatform := func(run func(context.Context)) {
		d := make(chan struct{})
		platformDone = append(platformDone, d)
		go func() { defer close(d); run(pctx) }()
	}
	var p platform.Platform
	if f.Files != "" {
		if f.CheckInterval <= 0 {
			return fmt.Errorf("-check-interval is %s: it must be positive", f.CheckInterval)
		}
		sp, err := newStaticPlatform(f.Files, f.Replicas, f.CheckInterval, log)
		if err != nil {
			return err
		}
		goPlatform(func(ctx context.Context) { _ = sp.Run(ctx) })
		p = sp
	} else {
		if len(f.Replicas) > 0 {
			return errors.New("-replica needs -f: in a cluster replicas come from EndpointSlices")
		}
		// With a control port the manager collects this gateway's last
		// requests and writes lastInvocationAt once for all gateways.
		f.Platform.InvocationsByManager = control != nil
		kp, start, err := newGatewayKubePlatform(ctx, f.Kube, f.Platform, log) // gateway_kube.go
		if err != nil {
			return err
		}
		// Listen at once: /readyz answers 503 until Agents and EndpointSlices
		// have synced, and so does an agent not yet seen (package gateway).
		goPlatform(start)
		p = kp
	}
	return serveGateway(ctx, cfg, f, p, control, log, stdout, stderr)
}

// serveGateway serves invocations (and the control endpoint) until ctx
// ends, then lets in-flight requests finish.
func serveGateway(ctx context.Context, cfg gateway.Config, f gatewayFlags, p platform.Platform, control *demand.Server,
	log *slog.Logger, stdout, stderr io.Writer) error {
	stopTracing, err := setupTracing(ctx, "flint-gateway", log, stderr) // OTEL_* env; off by default
	if err != nil {
		return err
	}
	defer stopTracing()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	var scaler gateway.Scaler
	if control != nil {
		scaler = control
	}
	gw, err := gateway.New(cfg, p, scaler, log, reg)
	if err != nil {
		return err
	}
	defer gw.Close()
	servers := []h1relay.PortServer{gw.ServingServer()}
	listeners := []string{cfg.Addr}
	names := []string{"listening"}
	if control != nil {
		control.Attach(gw)
		servers = append(servers, &http.Server{Handler: control, ReadHeaderTimeout: 10 * time.Second})
		listeners = append(listeners, f.ControlAddr)
		names = append(names, "control")
	}
	var admin h1relay.PortServer
	if f.AdminAddr != "" {
		// Closed last (deferred below): the kubelet reads /readyz failing
		// there while the gateway drains.
		admin = &http.Server{Handler: gw.AdminHandler(), ReadHeaderTimeout: 10 * time.Second}
		listeners = append(listeners, f.AdminAddr)
		names = append(names, "admin")
	}
	all := servers
	if admin != nil {
		all = append(slices.Clone(servers), admin)
	}
	serveErr := make(chan error, len(all))
	for i, srv := range all {
		ln, err := net.Listen("tcp", listeners[i])
		if err != nil {
			return fmt.Errorf("listen on %s: %w", listeners[i], err)
		}
		defer srv.Close()
		go func() { serveErr <- srv.Serve(ln) }()
		if i == 0 {
			fmt.Fprintf(stdout, "flint gateway listening on http://%s\n", ln.Addr())
		} else {
			fmt.Fprintf(stdout, "flint gateway %s on http://%s\n", names[i], ln.Addr())
		}
	}
	hctx, stopHistory := context.WithCancel(context.WithoutCancel(ctx))
	defer stopHistory()
	go gw.Run(hctx) // the dashboard's history
	select {
	case <-ctx.Done():
	case err := <-serveErr:
		return fmt.Errorf("gateway: %w", err)
	}
	// A Service or load balancer keeps sending here until it sees the pod
	// go: stopping to listen at once would refuse those connections.
	if f.DrainDelay > 0 {
		gw.Drain()
		log.Info("draining: /readyz fails; serving until load balancers stop sending", "drainDelay", f.DrainDelay)
		select {
		case <-time.After(f.DrainDelay):
		case err := <-serveErr:
			return fmt.Errorf("gateway: %w", err)
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), f.ShutdownTimeout)
	defer cancel()
	// The control port has nothing to finish: its poke streams end at once.
	for _, srv := range servers[1:] {
		srv.Close()
	}
	if err := servers[0].Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("gateway shutdown: %w", err)
	}
	return nil
}
