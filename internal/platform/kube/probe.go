package kube

import (
	"context"
	"net/http"
	"slices"
	"time"

	"github.com/flint-dev/flint/internal/platform"
)

// pendingProbeWindow bounds how long a replica that is not ready yet is
// probed: past it the kubelet, probing every second, has had its chances,
// and a pod that never gets ready (a crash loop) is not probed forever by
// every gateway.
const pendingProbeWindow = 10 * time.Second

// pendingProbeTimeout bounds one probe: /readyz is local to the sidecar.
const pendingProbeTimeout = 500 * time.Millisecond

// pendingProbes admits a replica the EndpointSlices still list as not
// ready as soon as its sidecar's own /readyz says it is, as Knative's
// activator does for the pods it waits on. The kubelet probes once a
// second at best, so a replica whose agent answers 5 ms after it starts
// would otherwise wait up to a second for the requests held for it: most
// of a cold start on Kubernetes. The slice catches up later; until then
// the probe's word stands (a replica that fails after it is retried
// elsewhere like any other).
//
// Only replicas the gateway dials itself are probed: through a Service,
// kube-proxy sends nothing to a pod before its slice says it is ready.
type pendingProbes struct {
	interval time.Duration // 0: off
	client   *http.Client
	ctx      context.Context // ends every probe (Platform.Start's end)
	stop     context.CancelFunc

	// byAgent holds, per agent, the pending replicas being probed or
	// admitted; guarded by Platform.mu.
	byAgent map[platform.AgentKey]map[platform.Endpoint]*pendingProbe
}

type pendingProbe struct {
	cancel context.CancelFunc
	ready  bool // its sidecar said so; routed to
}

func newPendingProbes(interval time.Duration) pendingProbes {
	ctx, stop := context.WithCancel(context.Background())
	return pendingProbes{
		interval: interval,
		client: &http.Client{Timeout: pendingProbeTimeout, Transport: &http.Transport{
			MaxIdleConnsPerHost: 1, IdleConnTimeout: 2 * time.Second}},
		ctx: ctx, stop: stop,
		byAgent: map[platform.AgentKey]map[platform.Endpoint]*pendingProbe{},
	}
}

// admitLocked returns ready plus the agent's pending replicas that a
// probe found ready, starts probing pending replicas not seen before, and
// stops probing those no longer pending (ready, terminating or gone).
// pending is nil when the agent is not routed to directly.
func (p *Platform) admitLocked(key platform.AgentKey, ready, pending []platform.Endpoint) []platform.Endpoint {
	pp := &p.probes
	probes := pp.byAgent[key]
	for ep, pr := range probes {
		if !slices.Contains(pending, ep) {
			pr.cancel()
			delete(probes, ep)
		}
	}
	if pp.interval <= 0 || len(pending) == 0 {
		delete(pp.byAgent, key)
		return ready
	}
	if probes == nil {
		probes = map[platform.Endpoint]*pendingProbe{}
		pp.byAgent[key] = probes
	}
	var admitted []platform.Endpoint
	for _, ep := range pending {
		pr, ok := probes[ep]
		switch {
		case !ok:
			ctx, cancel := context.WithTimeout(pp.ctx, pendingProbeWindow)
			pr = &pendingProbe{cancel: cancel}
			probes[ep] = pr
			go p.probeUntilReady(ctx, key, ep, pr)
		case pr.ready:
			admitted = append(admitted, ep)
		}
	}
	if len(admitted) == 0 {
		return ready
	}
	return union(ready, admitted)
}

// probeUntilReady probes ep's sidecar every interval until it is ready,
// then routes to it; it gives up when ctx ends (the window passed, the
// replica left pending, or the platform stopped).
func (p *Platform) probeUntilReady(ctx context.Context, key platform.AgentKey, ep platform.Endpoint, pr *pendingProbe) {
	start := time.Now()
	tick := time.NewTicker(p.probes.interval)
	defer tick.Stop()
	for {
		if platform.SidecarReady(ctx, p.probes.client, ep) {
			p.mu.Lock()
			defer p.mu.Unlock()
			if p.probes.byAgent[key][ep] != pr || ctx.Err() != nil {
				return // no longer pending: the slice has spoken
			}
			pr.ready = true
			p.log.Debug("replica ready by the gateway's probe, before its EndpointSlice",
				"agent", key.String(), "replica", ep.Replica, "probing", time.Since(start))
			p.publishLocked(key)
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
