package e2e

import (
	"context"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flint-dev/flint/internal/testutil"
)

// readinessBalancer is a layer-4 balancer that follows readiness, as a
// Kubernetes Service does through its EndpointSlices: it checks each
// backend's /readyz every interval and sends each new connection, round
// robin, to one that last answered 200. An established connection stays
// with its backend, as conntrack keeps it. A backend that refuses the
// dial has the client's connection closed: to the client a reset, as
// kube-proxy's stale rules give.
type readinessBalancer struct {
	ln       net.Listener
	backends []string
	ready    atomic.Pointer[[]string]
	next     atomic.Uint64
	wg       sync.WaitGroup
	conns    sync.Map // net.Conn -> struct{}, closed on stop
	failed   atomic.Int64
}

func startReadinessBalancer(t *testing.T, interval time.Duration, backends ...string) *readinessBalancer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &readinessBalancer{ln: ln, backends: backends}
	ctx, cancel := context.WithCancel(context.Background())
	b.check(ctx)
	b.wg.Go(func() {
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				b.check(ctx)
			}
		}
	})
	b.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.wg.Go(func() { b.serve(c) })
		}
	})
	t.Cleanup(func() {
		cancel()
		ln.Close()
		b.conns.Range(func(c, _ any) bool { c.(net.Conn).Close(); return true })
		b.wg.Wait()
	})
	return b
}

func (b *readinessBalancer) addr() string { return b.ln.Addr().String() }

func (b *readinessBalancer) check(ctx context.Context) {
	c := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	var ready []string
	for _, be := range b.backends {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+be+"/readyz", nil)
		res, err := c.Do(req)
		if err != nil {
			continue
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode == http.StatusOK {
			ready = append(ready, be)
		}
	}
	b.ready.Store(&ready)
}

func (b *readinessBalancer) serve(client net.Conn) {
	b.conns.Store(client, struct{}{})
	defer b.conns.Delete(client)
	defer client.Close()
	ready := *b.ready.Load()
	if len(ready) == 0 {
		b.failed.Add(1)
		return
	}
	be := ready[b.next.Add(1)%uint64(len(ready))]
	upstream, err := net.Dial("tcp", be)
	if err != nil {
		b.failed.Add(1)
		return
	}
	b.conns.Store(upstream, struct{}{})
	defer b.conns.Delete(upstream)
	defer upstream.Close()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		io.Copy(dst, src)
		if tc, ok := dst.(*net.TCPConn); ok {
			tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go pipe(upstream, client)
	go pipe(client, upstream)
	<-done
	<-done
}

// TestFaultGatewayRestartBehindServiceWithDrainDelay: two gateways with
// -drain-delay behind a balancer that follows their readiness, as the
// chart's gateway Service does. One gateway restarts under load; the
// client is plain (no retries, POSTs without Idempotency-Key) and nothing
// fails: during the drain the gateway fails /readyz, so new connections go
// to the other one, and closes each connection after its response, so
// kept-alive ones move too, before it stops listening.
func TestFaultGatewayRestartBehindServiceWithDrainDelay(t *testing.T) {
	const workers = 16
	const drainDelay = time.Second
	file, replicas, agents := restartSetup(t)
	addrA, addrB := testutil.FreeAddr(t), testutil.FreeAddr(t)
	drain := []string{"-drain-delay", drainDelay.String()}
	a, _ := startStaticGateway(t, file, addrA, replicas, drain...)
	startStaticGateway(t, file, addrB, replicas, drain...)
	// kube-proxy and ingress controllers follow endpoint changes within
	// about a second; the drain delay must exceed what the balancer takes.
	lb := startReadinessBalancer(t, 100*time.Millisecond, addrA, addrB)

	c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 100}}
	defer c.CloseIdleConnections()
	load := startRestartLoad(c, "http://"+lb.addr()+"/v1/agents/default/echo/work?sleep=50ms", workers, nil)
	r := restartUnderLoad(t, load, agents, a, func() time.Time {
		_, listening := startStaticGateway(t, file, addrA, replicas, drain...)
		return listening
	})
	tl := checkNothingLost(t, r, agents, "a readiness-following balancer")
	if exited := r.exited.Sub(r.sigterm); exited < drainDelay {
		t.Errorf("the gateway exited %s after SIGTERM, before its %s drain delay", exited, drainDelay)
	}
	if n := lb.failed.Load(); n > 0 {
		t.Errorf("the balancer found no gateway to connect %d connections to", n)
	}
	if !slices.Contains(*lb.ready.Load(), addrA) {
		t.Error("the balancer never saw the restarted gateway ready")
	}
	t.Logf("%d requests, %d failed, %d duplicated, no client retries; the gateway drained for %s and exited %s after SIGTERM; its successor listened %s after SIGTERM",
		len(r.outcomes), len(r.outcomes)-tl.ok, countDupes(agents), drainDelay,
		r.exited.Sub(r.sigterm).Round(time.Millisecond), r.listening.Sub(r.sigterm).Round(time.Millisecond))
}
