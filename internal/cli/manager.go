package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/flint-dev/flint/api/v1alpha1"
	"github.com/flint-dev/flint/internal/autoscaler"
	"github.com/flint-dev/flint/internal/controller"
	"github.com/flint-dev/flint/internal/platform/kube"
)

// managerConfig is every flag of `flint manager`.
type managerConfig struct {
	Kubeconfig              string
	KubeAPIQPS              float64
	KubeAPIBurst            int
	Namespaces              string
	MetricsAddr             string
	HealthProbeAddr         string
	LeaderElect             bool
	LeaderElectionID        string
	LeaderElectionNamespace string
	Controller              controller.Config
	Platform                kube.Config
	Autoscaler              autoscaler.LoopConfig
	Log                     logConfig
}

const managerSynopsis = `The Kubernetes control plane of Flint. It reconciles every Agent into a
Deployment (the agent's container plus the flint proxy sidecar) and a
Service, reports the agent's state in its status, and, on the elected
leader only, runs the autoscaler, which writes each Agent's scale.
docs/manager.md describes the pods it makes and how they shut down.`

func runManager(ctx context.Context, args []string, _, stderr io.Writer) error {
	cfg := managerConfig{
		KubeAPIQPS:       50,
		KubeAPIBurst:     100,
		MetricsAddr:      ":8080",
		HealthProbeAddr:  ":8081",
		LeaderElect:      true,
		LeaderElectionID: "flint-manager.flint.dev",
		Controller:       controller.DefaultConfig(version()),
		Platform:         kube.DefaultConfig(),
	}
	fs := newFlagSet("manager", managerSynopsis, stderr)
	fs.StringVar(&cfg.Kubeconfig, "kubeconfig", "", "`path` of a kubeconfig (default: $KUBECONFIG, else in-cluster, else ~/.kube/config)")
	fs.Float64Var(&cfg.KubeAPIQPS, "kube-api-qps", cfg.KubeAPIQPS, "sustained requests per second to the API server")
	fs.IntVar(&cfg.KubeAPIBurst, "kube-api-burst", cfg.KubeAPIBurst, "burst of requests to the API server above -kube-api-qps")
	fs.StringVar(&cfg.Namespaces, "namespaces", "", "comma-separated `namespaces` to watch for Agents (empty: all)")
	fs.StringVar(&cfg.MetricsAddr, "metrics-addr", cfg.MetricsAddr, "`address` of the Prometheus /metrics endpoint (0 disables it)")
	fs.StringVar(&cfg.HealthProbeAddr, "health-probe-addr", cfg.HealthProbeAddr, "`address` of /healthz and /readyz (0 disables them)")
	fs.BoolVar(&cfg.LeaderElect, "leader-elect", cfg.LeaderElect, "elect a leader among manager replicas; only the leader reconciles and autoscales")
	fs.StringVar(&cfg.LeaderElectionID, "leader-election-id", cfg.LeaderElectionID, "`name` of the Lease the manager replicas elect a leader with")
	fs.StringVar(&cfg.LeaderElectionNamespace, "leader-election-namespace", "", "`namespace` of the leader-election Lease (default: the manager's own namespace in a cluster)")
	cfg.Controller.RegisterFlags(fs)
	cfg.Platform.RegisterFlags(fs)
	cfg.Autoscaler.RegisterFlags(fs)
	cfg.Log.RegisterFlags(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	log, err := cfg.Log.logger(stderr)
	if err != nil {
		return err
	}
	if err := errors.Join(cfg.Controller.Validate(), cfg.Platform.Validate(), cfg.Autoscaler.Validate()); err != nil {
		return err
	}
	if cfg.KubeAPIQPS <= 0 || cfg.KubeAPIBurst < 1 {
		return fmt.Errorf("-kube-api-qps (%g) and -kube-api-burst (%d) must be positive", cfg.KubeAPIQPS, cfg.KubeAPIBurst)
	}
	restCfg, err := kubeRESTConfig(cfg.Kubeconfig)
	if err != nil {
		return err
	}
	restCfg.QPS, restCfg.Burst = float32(cfg.KubeAPIQPS), cfg.KubeAPIBurst
	return serveManager(ctx, cfg, restCfg, log)
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
func serveManager(ctx context.Context, cfg managerConfig, restCfg *rest.Config, log *slog.Logger) error {
	logger := logr.FromSlogHandler(log.Handler())
	ctrl.SetLogger(logger)
	klog.SetLogger(logger)

	scheme := runtime.NewScheme()
	if err := errors.Join(clientgoscheme.AddToScheme(scheme), v1alpha1.AddToScheme(scheme)); err != nil {
		return fmt.Errorf("scheme: %w", err)
	}
	var namespaces []string
	for ns := range strings.SplitSeq(cfg.Namespaces, ",") {
		if ns = strings.TrimSpace(ns); ns != "" {
			namespaces = append(namespaces, ns)
		}
	}
	mgr, err := ctrl.NewManager(restCfg, ctrl.Options{
		Scheme:                  scheme,
		Logger:                  logger,
		Cache:                   controller.CacheOptions(namespaces),
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
	// No gateway demand yet: held and refused requests reach the
	// autoscaler, and scale-from-zero pokes reach loop.Poke, through the
	// gateway's channel to the manager (issue 5). Until then an agent at
	// zero wakes on the next tick after a gateway scales it.
	loop, err := autoscaler.NewLoop(cfg.Autoscaler, plat, nil, log, ctrlmetrics.Registry)
	if err != nil {
		return err
	}
	if err := mgr.Add(&autoscalerRunnable{platform: plat, loop: loop}); err != nil {
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
	platform *kube.Platform
	loop     *autoscaler.Loop
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
	return r.loop.Run(ctx)
}

// NeedLeaderElection implements manager.LeaderElectionRunnable.
func (r *autoscalerRunnable) NeedLeaderElection() bool { return true }
