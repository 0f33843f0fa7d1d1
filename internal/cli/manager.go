package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/flint-dev/flint/internal/autoscaler"
	"github.com/flint-dev/flint/internal/controller"
	"github.com/flint-dev/flint/internal/demand"
	"github.com/flint-dev/flint/internal/platform/kube"
)

// managerConfig is every flag of `flint manager`.
type managerConfig struct {
	Kube                    kubeConnection
	MetricsAddr             string
	HealthProbeAddr         string
	LeaderElect             bool
	LeaderElectionID        string
	LeaderElectionNamespace string
	Controller              controller.Config
	Platform                kube.Config
	Autoscaler              autoscaler.LoopConfig
	Gateways                string
	ControlTokenFile        string
	Secrets                 managerSecrets // manager_secrets.go
	GatewayScrapeInterval   time.Duration
	GatewayScrapeTimeout    time.Duration
	Log                     logConfig
	Pprof                   pprofConfig // pprof.go
}

const managerSynopsis = `The Kubernetes control plane of Flint. It reconciles every Agent into a
Deployment (the agent's container plus the flint proxy sidecar) and a
Service, reports the agent's state in its status, and, on the elected
leader only, runs the autoscaler, which writes each Agent's scale.
docs/manager.md describes the pods it makes and how they shut down.`

func runManager(ctx context.Context, args []string, _, stderr io.Writer) error {
	cfg := managerConfig{
		Kube:                  defaultKubeConnection(),
		GatewayScrapeInterval: time.Second,
		GatewayScrapeTimeout:  time.Second,
		MetricsAddr:           ":8080",
		HealthProbeAddr:       ":8081",
		LeaderElect:           true,
		LeaderElectionID:      "flint-manager.flint.dev",
		Controller:            controller.DefaultConfig(version()),
		Platform:              kube.DefaultConfig(),
	}
	cfg.Platform.PendingProbeInterval = 0 // the manager routes nothing
	fs := newFlagSet("manager", managerSynopsis, stderr)
	cfg.Kube.RegisterFlags(fs)
	fs.StringVar(&cfg.MetricsAddr, "metrics-addr", cfg.MetricsAddr, "`address` of the Prometheus /metrics endpoint (0 disables it)")
	fs.StringVar(&cfg.HealthProbeAddr, "health-probe-addr", cfg.HealthProbeAddr, "`address` of /healthz and /readyz (0 disables them)")
	fs.BoolVar(&cfg.LeaderElect, "leader-elect", cfg.LeaderElect, "elect a leader among manager replicas; only the leader reconciles and autoscales")
	fs.StringVar(&cfg.LeaderElectionID, "leader-election-id", cfg.LeaderElectionID, "`name` of the Lease the manager replicas elect a leader with")
	fs.StringVar(&cfg.LeaderElectionNamespace, "leader-election-namespace", "", "`namespace` of the leader-election Lease (default: the manager's own namespace in a cluster)")
	cfg.Controller.RegisterFlags(fs)
	cfg.Platform.RegisterFlags(fs)
	cfg.Autoscaler.RegisterFlags(fs)
	fs.StringVar(&cfg.Gateways, "gateways", "", "comma-separated `URLs` of gateways' control ports (-control-addr); each name is resolved to every address it has, "+
		"so a headless Service reaches every gateway pod. Their held requests count as demand and wake agents at zero at once (empty: sidecar load only)")
	fs.StringVar(&cfg.ControlTokenFile, "control-token-file", "", "`file` with the secret the gateways' control ports expect (required with -gateways)")
	cfg.Secrets.RegisterFlags(fs)
	fs.DurationVar(&cfg.GatewayScrapeInterval, "gateway-scrape-interval", cfg.GatewayScrapeInterval, "how often every gateway's demand is read")
	fs.DurationVar(&cfg.GatewayScrapeTimeout, "gateway-scrape-timeout", cfg.GatewayScrapeTimeout, "timeout of one read of a gateway's demand")
	cfg.Log.RegisterFlags(fs)
	cfg.Pprof.RegisterFlags(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	log, err := cfg.Log.logger(stderr)
	if err != nil {
		return err
	}
	tuneManagerGC() // gc.go
	if err := cfg.Pprof.serve(ctx, log); err != nil {
		return err
	}
	if err := errors.Join(cfg.Controller.Validate(), cfg.Platform.Validate(), cfg.Autoscaler.Validate()); err != nil {
		return err
	}
	restCfg, err := cfg.Kube.config()
	if err != nil {
		return err
	}
	if err := cfg.Secrets.ensure(ctx, restCfg, log); err != nil {
		return err
	}
	// -gateway-token-secret gives sidecars the token the gateways mount
	// from the same Secret, unless -gateway-token-file names one.
	if t := cfg.Secrets.gatewayToken; t != nil {
		cfg.Controller.UseGatewayToken(t.Get)
	}
	// With bypass protection every request a replica serves passed a
	// gateway, whose demand the collector reads: quiet agents need no
	// periodic scrape (docs/autoscaling.md).
	cfg.Autoscaler.GatewaysSeeAll = cfg.Controller.BypassProtected()
	collector, err := cfg.demandCollector(log)
	if err != nil {
		return err
	}
	return serveManager(ctx, cfg, restCfg, collector, log)
}

// demandCollector reads the gateways' demand, or is nil without -gateways.
func (cfg managerConfig) demandCollector(log *slog.Logger) (*demand.Collector, error) {
	var urls []string
	for u := range strings.SplitSeq(cfg.Gateways, ",") {
		if u = strings.TrimSpace(u); u != "" {
			urls = append(urls, u)
		}
	}
	if len(urls) == 0 {
		return nil, nil
	}
	tokens := cfg.Secrets.controlToken // -control-token-secret, unless a file is given
	if cfg.ControlTokenFile != "" {
		var err error
		if tokens, err = demand.WatchToken(cfg.ControlTokenFile, log); err != nil {
			return nil, fmt.Errorf("-control-token-file: %w", err)
		}
	}
	var token func() string // followed: the first line is presented, so a rotation's swap applies here
	if tokens != nil {
		token = func() string { return tokens.Get().Presented() }
	}
	return demand.NewCollector(demand.CollectorConfig{Gateways: urls, TokenFrom: token,
		Interval: cfg.GatewayScrapeInterval, Timeout: cfg.GatewayScrapeTimeout}, log)
}

// kubeRESTConfig finds the API server: an explicit kubeconfig, else what
// controller-runtime finds ($KUBECONFIG, in-cluster, ~/.kube/config).
func kubeRESTConfig(path string) (*rest.Config, error) {
	if path != "" {
		c, err := clientcmd.BuildConfigFromFlags("", path)
		if err != nil {
			return nil, fmt.Errorf("-kubeconfig %s: %w", path, err)
		}
		return c, nil
	}
	c, err := ctrl.GetConfig()
	if err != nil {
		return nil, fmt.Errorf("find the Kubernetes API server (set -kubeconfig or run in a cluster): %w", err)
	}
	return c, nil
}

// serveManager runs the reconciler, the platform and the autoscaler until
// ctx ends. Everything logs through log: controller-runtime and client-go
// (leader election) included.
func serveManager(ctx context.Context, cfg managerConfig, restCfg *rest.Config, collector *demand.Collector, log *slog.Logger) error {
	logger := routeKubeLogs(log)
	scheme, err := kubeScheme()
	if err != nil {
		return err
	}
	namespaces := cfg.Kube.namespaces()
	cacheOpts, err := cfg.Kube.cacheOptions()
	if err != nil {
		return err
	}
	mgr, err := ctrl.NewManager(restCfg, ctrl.Options{
		Scheme:                  scheme,
		Logger:                  logger,
		Cache:                   cacheOpts,
		Metrics:                 metricsserver.Options{BindAddress: cfg.MetricsAddr},
		HealthProbeBindAddress:  cfg.HealthProbeAddr,
		LeaderElection:          cfg.LeaderElect,
		LeaderElectionID:        cfg.LeaderElectionID,
		LeaderElectionNamespace: cfg.LeaderElectionNamespace,
		// Step down at once on shutdown, so a rolling update of the
		// manager hands over in seconds, not a lease duration.
		LeaderElectionReleaseOnCancel: true,
	})
	if err != nil {
		return fmt.Errorf("manager: %w", err)
	}

	rec, err := controller.NewReconciler(mgr.GetClient(), cfg.Controller, mgr.GetEventRecorder("flint-manager"), ctrlmetrics.Registry)
	if err != nil {
		return err
	}
	if err := rec.SetupWithManager(mgr); err != nil {
		return fmt.Errorf("agent controller: %w", err)
	}
	plat, err := kube.New(ctx, mgr.GetCache(), mgr.GetClient(), cfg.Platform, log)
	if err != nil {
		return err
	}
	if err := mgr.Add(plat); err != nil {
		return fmt.Errorf("kube platform: %w", err)
	}
	// The gateways' held and refused requests are demand, and their pokes
	// wake agents at zero at once (package demand). Without -gateways the
	// autoscaler sees sidecar load only, and nothing wakes an agent at
	// zero: the chart always sets it.
	var demandSource autoscaler.DemandSource
	if collector != nil {
		demandSource = collector
	}
	loop, err := autoscaler.NewLoop(cfg.Autoscaler, plat, demandSource, log, ctrlmetrics.Registry)
	if err != nil {
		return err
	}
	if err := mgr.Add(&autoscalerRunnable{platform: plat, loop: loop, collector: collector}); err != nil {
		return fmt.Errorf("autoscaler: %w", err)
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return fmt.Errorf("health check: %w", err)
	}
	if err := mgr.AddReadyzCheck("informers", func(*http.Request) error {
		if !plat.HasSynced() {
			return errors.New("agents and endpoints not synced yet")
		}
		return nil
	}); err != nil {
		return fmt.Errorf("readiness check: %w", err)
	}

	log.Info("flint manager starting", "version", version(), "sidecarImage", cfg.Controller.SidecarImage,
		"leaderElection", cfg.LeaderElect, "namespaces", namespaces)
	if err := mgr.Start(ctx); err != nil {
		return fmt.Errorf("manager: %w", err)
	}
	log.Info("flint manager stopped")
	return nil
}

// autoscalerRunnable runs the autoscaler on the elected leader only: two
// loops would each write their own decision to the same Agents.
type autoscalerRunnable struct {
	platform  *kube.Platform
	loop      *autoscaler.Loop
	collector *demand.Collector // nil without -gateways
}

// Start waits until the platform has seen every Agent and EndpointSlice (a
// partial view would read as zero load and scale agents down), then runs
// the loop until ctx ends.
func (r *autoscalerRunnable) Start(ctx context.Context) error {
	if err := r.platform.WaitForSync(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	if r.collector != nil {
		done := make(chan struct{})
		defer func() { <-done }()
		go func() { defer close(done); r.collector.Run(ctx, r.loop.Poke, r.platform.RecordLastInvocation) }()
	}
	return r.loop.Run(ctx)
}

// NeedLeaderElection implements manager.LeaderElectionRunnable.
func (r *autoscalerRunnable) NeedLeaderElection() bool { return true }

// The collector tells the autoscaler when a gateway's demand could not be
// read, so quiet agents are scraped again meanwhile.
var _ autoscaler.GatewayCoverage = (*demand.Collector)(nil)
