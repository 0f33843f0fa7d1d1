package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flint-dev/flint/api/v1alpha1"
	"github.com/flint-dev/flint/internal/agentfile"
	"github.com/flint-dev/flint/internal/controller"
	"github.com/flint-dev/flint/internal/platform/kube"
	"github.com/flint-dev/flint/internal/platform/static"
)

// kubeConnection is how the manager and the gateway reach the API server.
type kubeConnection struct {
	Kubeconfig string
	QPS        float64
	Burst      int
	Namespaces string
	// AgentSelector limits the Agents watched to those whose labels match,
	// so two installations can share a cluster without both acting on one
	// Agent.
	AgentSelector string
}

func defaultKubeConnection() kubeConnection { return kubeConnection{QPS: 50, Burst: 100} }

func (k *kubeConnection) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&k.Kubeconfig, "kubeconfig", "", "`path` of a kubeconfig (default: $KUBECONFIG, else in-cluster, else ~/.kube/config)")
	fs.Float64Var(&k.QPS, "kube-api-qps", k.QPS, "sustained requests per second to the API server")
	fs.IntVar(&k.Burst, "kube-api-burst", k.Burst, "burst of requests to the API server above -kube-api-qps")
	fs.StringVar(&k.Namespaces, "namespaces", "", "comma-separated `namespaces` to watch for Agents (empty: all)")
	fs.StringVar(&k.AgentSelector, "agent-selector", "", "label `selector` of the Agents to act on, e.g. flint.dev/class=team-a (empty: all); other installations in the cluster must select others")
}

// cacheOptions is the informer cache of Agents and what the manager makes
// for them, limited to -namespaces and -agent-selector.
func (k kubeConnection) cacheOptions() (cache.Options, error) {
	opts := controller.CacheOptions(k.namespaces())
	if k.AgentSelector != "" {
		sel, err := labels.Parse(k.AgentSelector)
		if err != nil {
			return cache.Options{}, fmt.Errorf("-agent-selector %q: %w", k.AgentSelector, err)
		}
		opts.ByObject[&v1alpha1.Agent{}] = cache.ByObject{Label: sel}
	}
	return opts, nil
}

// config validates the flags and finds the API server.
func (k kubeConnection) config() (*rest.Config, error) {
	if k.QPS <= 0 || k.Burst < 1 {
		return nil, fmt.Errorf("-kube-api-qps (%g) and -kube-api-burst (%d) must be positive", k.QPS, k.Burst)
	}
	c, err := kubeRESTConfig(k.Kubeconfig)
	if err != nil {
		return nil, err
	}
	c.QPS, c.Burst = float32(k.QPS), k.Burst
	return c, nil
}

func (k kubeConnection) namespaces() []string {
	var out []string
	for ns := range strings.SplitSeq(k.Namespaces, ",") {
		if ns = strings.TrimSpace(ns); ns != "" {
			out = append(out, ns)
		}
	}
	return out
}

func kubeScheme() (*runtime.Scheme, error) {
	scheme := runtime.NewScheme()
	if err := errors.Join(clientgoscheme.AddToScheme(scheme), v1alpha1.AddToScheme(scheme)); err != nil {
		return nil, fmt.Errorf("scheme: %w", err)
	}
	return scheme, nil
}

// routeKubeLogs sends controller-runtime's and client-go's logs to log.
func routeKubeLogs(log *slog.Logger) logr.Logger {
	logger := logr.FromSlogHandler(log.Handler())
	ctrl.SetLogger(logger)
	klog.SetLogger(logger)
	return logger
}

// newGatewayKubePlatform builds the gateway's view of the cluster: an
// informer cache of Agents and EndpointSlices (and Services without
// direct-to-pod routing) that every request reads without an API call.
// start runs the cache and the writer of lastInvocationAt until its ctx
// ends.
func newGatewayKubePlatform(ctx context.Context, conn kubeConnection, cfg kube.Config, log *slog.Logger) (*kube.Platform, func(context.Context), error) {
	if err := cfg.Validate(); err != nil {
		return nil, nil, err
	}
	restCfg, err := conn.config()
	if err != nil {
		return nil, nil, err
	}
	routeKubeLogs(log)
	scheme, err := kubeScheme()
	if err != nil {
		return nil, nil, err
	}
	opts, err := conn.cacheOptions()
	if err != nil {
		return nil, nil, err
	}
	opts.Scheme = scheme
	informers, err := cache.New(restCfg, opts)
	if err != nil {
		return nil, nil, fmt.Errorf("informer cache: %w", err)
	}
	writer, err := client.New(restCfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, nil, fmt.Errorf("kubernetes client: %w", err)
	}
	p, err := kube.New(ctx, informers, writer, cfg, log)
	if err != nil {
		return nil, nil, err
	}
	start := func(ctx context.Context) {
		go func() {
			if err := informers.Start(ctx); err != nil {
				log.Error("informer cache stopped", "err", err)
			}
		}()
		_ = p.Start(ctx) // writes lastInvocationAt until ctx ends, then once more
	}
	return p, start, nil
}

// newStaticPlatform serves agents from YAML in front of fixed sidecars.
func newStaticPlatform(files string, replicas []string, checkInterval time.Duration, log *slog.Logger) (*static.Platform, error) {
	loaded, err := agentfile.Load(files)
	if err != nil {
		return nil, err
	}
	eps, err := static.ParseReplicas(replicas)
	if err != nil {
		return nil, err
	}
	agents := make([]*v1alpha1.Agent, len(loaded))
	for i, l := range loaded {
		agents[i] = l.Agent
	}
	return static.New(agents, eps, checkInterval, log)
}
