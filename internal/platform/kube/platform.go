// Package kube is the Kubernetes implementation of platform.Platform: Agents
// come from the API server through informers, ready replicas from the
// EndpointSlices of each agent's Service, scale goes to the Agent's scale
// subresource (package controller copies it to the Deployment) and
// invocation times to its status, coalesced.
//
// Every read (Agent, Agents, ReadyEndpoints, Replicas) is served from
// memory kept up to date by informer event handlers, with no API call and no
// copy per call, so the gateway can use it on every request.
package kube

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flint-dev/flint/api/v1alpha1"
	"github.com/flint-dev/flint/internal/platform"
)

// DefaultInvocationFlushInterval bounds status writes for lastInvocationAt:
// at most one per agent per interval, never one per request.
const DefaultInvocationFlushInterval = 10 * time.Second

// Config tunes the platform.
type Config struct {
	// InvocationFlushInterval is how often recorded invocation times are
	// written to agents' status.lastInvocationAt.
	InvocationFlushInterval time.Duration
	// DirectToPod routes to pod IPs from EndpointSlices. Off, requests go
	// to each agent's Service ClusterIP and kube-proxy picks the pod
	// (routing.go says which agents stay direct regardless).
	DirectToPod bool
	// ClusterDomain completes Service DNS names (NAME.NAMESPACE.svc.DOMAIN),
	// the names sidecar TLS certificates are verified against.
	ClusterDomain string
	// InvocationsByManager leaves status.lastInvocationAt to the manager:
	// a gateway whose demand the manager collects (-control-addr) reports
	// its last request there, and the manager's leader writes one time per
	// agent for all gateways. RecordInvocation then does nothing.
	InvocationsByManager bool
	// PendingProbeInterval is how often a replica routed to directly whose
	// EndpointSlice says it is not ready yet has its sidecar's /readyz
	// probed, to route to it before the kubelet's next probe (probe.go).
	// 0 turns probing off; only a gateway probes.
	PendingProbeInterval time.Duration
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{InvocationFlushInterval: DefaultInvocationFlushInterval, DirectToPod: true, ClusterDomain: "cluster.local",
		PendingProbeInterval: 25 * time.Millisecond}
}

// RegisterFlags binds c to flags on fs; c's current values are the defaults.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.DurationVar(&c.InvocationFlushInterval, "invocation-flush-interval", c.InvocationFlushInterval,
		"how often the last invocation time of each invoked agent is written to its status.lastInvocationAt")
}

// RegisterRoutingFlags binds the settings only a gateway uses.
func (c *Config) RegisterRoutingFlags(fs *flag.FlagSet) {
	fs.BoolVar(&c.DirectToPod, "direct-to-pod", c.DirectToPod,
		"route to pod IPs from EndpointSlices; false sends requests to each agent's Service ClusterIP through kube-proxy (MCP agents stay direct)")
	fs.DurationVar(&c.PendingProbeInterval, "probe-pending-interval", c.PendingProbeInterval,
		"how often the sidecar of a starting replica is probed, to route to it as soon as it is ready rather than at the kubelet's next probe (at most 10s per replica; 0 = off; direct-to-pod routing only)")
	fs.StringVar(&c.ClusterDomain, "cluster-domain", c.ClusterDomain,
		"the cluster's DNS domain, completing Service names that sidecar TLS certificates are verified against")
}

// Validate reports configuration problems, naming the flag to change.
func (c Config) Validate() error {
	if c.InvocationFlushInterval < time.Second {
		return fmt.Errorf("-invocation-flush-interval=%s must be at least 1s: status.lastInvocationAt has whole seconds", c.InvocationFlushInterval)
	}
	if c.PendingProbeInterval < 0 {
		return fmt.Errorf("-probe-pending-interval=%s must be 0 (off) or positive", c.PendingProbeInterval)
	}
	if c.ClusterDomain == "" || strings.HasPrefix(c.ClusterDomain, ".") || strings.HasSuffix(c.ClusterDomain, ".") {
		return fmt.Errorf("-cluster-domain=%q must be a DNS domain such as cluster.local", c.ClusterDomain)
	}
	return nil
}

// Platform serves agents running on Kubernetes. It implements
// platform.Platform, and manager.Runnable (Start) to write invocation times.
type Platform struct {
	client client.Client
	cfg    Config
	log    *slog.Logger

	mu     sync.RWMutex
	agents map[platform.AgentKey]*v1alpha1.Agent // defaulted, shared read-only with callers
	// slices holds each agent's ready endpoints per EndpointSlice name, so
	// a slice event recomputes one agent without listing anything.
	slices    map[platform.AgentKey]map[string]sliceEndpoints
	endpoints platform.EndpointSet
	draining  platform.EndpointSet
	services  map[platform.AgentKey]serviceRoute // only with DirectToPod off
	probes    pendingProbes                      // replicas not ready yet (probe.go)

	invocations invocationLog
	synced      []toolscache.InformerSynced
}

var (
	_ platform.Platform        = (*Platform)(nil)
	_ platform.Draining        = (*Platform)(nil)
	_ platform.FailureReporter = (*Platform)(nil)
)

// New registers the platform's event handlers on informers (the manager's
// cache, restricted by controller.CacheOptions). The handlers run once the
// cache starts; WaitForSync tells when they have seen everything. c writes
// scale and status; it is not read from.
func New(ctx context.Context, informers cache.Informers, c client.Client, cfg Config, log *slog.Logger) (*Platform, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("kube platform: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Platform{
		client: c, cfg: cfg, log: log,
		agents:   map[platform.AgentKey]*v1alpha1.Agent{},
		slices:   map[platform.AgentKey]map[string]sliceEndpoints{},
		services: map[platform.AgentKey]serviceRoute{},
		probes:   newPendingProbes(cfg.PendingProbeInterval),
	}
	type watch struct {
		obj     client.Object
		handler toolscache.ResourceEventHandler
	}
	watches := []watch{
		{&v1alpha1.Agent{}, toolscache.ResourceEventHandlerFuncs{
			AddFunc: p.upsertAgent, UpdateFunc: func(_, obj any) { p.upsertAgent(obj) }, DeleteFunc: p.deleteAgent}},
		{&discoveryv1.EndpointSlice{}, toolscache.ResourceEventHandlerFuncs{
			AddFunc: p.upsertSlice, UpdateFunc: func(_, obj any) { p.upsertSlice(obj) }, DeleteFunc: p.deleteSlice}},
	}
	if !cfg.DirectToPod {
		watches = append(watches, watch{&corev1.Service{}, toolscache.ResourceEventHandlerFuncs{
			AddFunc: p.upsertService, UpdateFunc: func(_, obj any) { p.upsertService(obj) }, DeleteFunc: p.deleteService}})
	}
	for _, h := range watches {
		inf, err := informers.GetInformer(ctx, h.obj)
		if err != nil {
			return nil, fmt.Errorf("kube platform: informer for %T: %w", h.obj, err)
		}
		reg, err := inf.AddEventHandler(h.handler)
		if err != nil {
			return nil, fmt.Errorf("kube platform: watch %T: %w", h.obj, err)
		}
		p.synced = append(p.synced, reg.HasSynced)
	}
	return p, nil
}

// WaitForSync returns once every Agent and EndpointSlice in the cache has
// reached the platform, or an error when ctx ends first. Decisions made
// before that would read a partial cluster as zero load.
func (p *Platform) WaitForSync(ctx context.Context) error {
	if !toolscache.WaitForCacheSync(ctx.Done(), p.synced...) {
		return errors.New("kube platform: cache did not sync before shutdown")
	}
	return nil
}

// HasSynced reports whether WaitForSync would return at once.
func (p *Platform) HasSynced() bool {
	for _, s := range p.synced {
		if !s() {
			return false
		}
	}
	return true
}

// Agent implements platform.Platform. The agent is shared: do not modify it.
func (p *Platform) Agent(key platform.AgentKey) (*v1alpha1.Agent, bool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	a, ok := p.agents[key]
	return a, ok
}

// Agents implements platform.Platform, sorted by namespace/name.
func (p *Platform) Agents() []*v1alpha1.Agent {
	// Each agent's sort key is built once: building it in the comparison
	// cost n log n strings per call, and the autoscaler lists every agent
	// every tick.
	type keyed struct {
		key string
		a   *v1alpha1.Agent
	}
	p.mu.RLock()
	all := make([]keyed, 0, len(p.agents))
	for k, a := range p.agents {
		all = append(all, keyed{k.String(), a})
	}
	p.mu.RUnlock()
	slices.SortFunc(all, func(x, y keyed) int { return strings.Compare(x.key, y.key) })
	out := make([]*v1alpha1.Agent, len(all))
	for i, k := range all {
		out[i] = k.a
	}
	return out
}

// ReadyEndpoints implements platform.Platform.
func (p *Platform) ReadyEndpoints(key platform.AgentKey) ([]platform.Endpoint, <-chan struct{}) {
	return p.endpoints.Get(key)
}
