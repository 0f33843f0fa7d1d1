package kube

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flint-dev/flint/api/v1alpha1"
	"github.com/flint-dev/flint/internal/platform"
	"github.com/flint-dev/flint/internal/testenv"
)

// fakeSidecar answers /readyz 503 until readyAfter probes, then 200.
type fakeSidecar struct {
	srv    *httptest.Server
	probes atomic.Int64
}

func startFakeSidecar(t *testing.T, readyAfter int64) *fakeSidecar {
	f := &fakeSidecar{}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" {
			t.Errorf("probe of %s, want /readyz", r.URL.Path)
		}
		if f.probes.Add(1) <= readyAfter {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	t.Cleanup(f.srv.Close)
	return f
}

// slice lists one pod whose sidecar's admin port is the fake's.
func (f *fakeSidecar) slice(ready bool) *discoveryv1.EndpointSlice {
	_, port, _ := net.SplitHostPort(f.srv.Listener.Addr().String())
	admin, _ := strconv.Atoi(port)
	s := agentSlice("ns", "s", "echo", discoveryv1.AddressTypeIPv4, endpoint("echo-1", "127.0.0.1", ptr(ready), nil))
	s.Ports[1].Port = ptr(int32(admin))
	return s
}

func probingPlatform(t *testing.T, mutate func(*Config)) *Platform {
	cfg := DefaultConfig()
	cfg.PendingProbeInterval = 5 * time.Millisecond
	if mutate != nil {
		mutate(&cfg)
	}
	p := offline(cfg)
	t.Cleanup(p.probes.stop)
	p.upsertAgent(&v1alpha1.Agent{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "echo"}})
	return p
}

var echoAgentKey = platform.AgentKey{Namespace: "ns", Name: "echo"}

// A starting replica is routed to once its sidecar says it is ready,
// before its EndpointSlice does; probing stops once the slice agrees.
func TestPendingReplicaIsRoutedOnceItsSidecarIsReady(t *testing.T) {
	sc := startFakeSidecar(t, 3)
	p := probingPlatform(t, nil)
	eps, changed := p.ReadyEndpoints(echoAgentKey)
	p.upsertSlice(sc.slice(false))
	if eps, _ = p.ReadyEndpoints(echoAgentKey); len(eps) != 0 {
		t.Fatalf("a replica nobody has seen ready is routed to: %v", names(eps))
	}
	deadline := time.After(10 * time.Second)
	for len(eps) == 0 {
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("the replica was not routed to within 10s of its sidecar turning ready (%d probes)", sc.probes.Load())
		}
		eps, changed = p.ReadyEndpoints(echoAgentKey)
	}
	if got := sc.probes.Load(); got != 4 {
		t.Errorf("%d probes, want 4: three not ready, then ready", got)
	}
	want := "echo-1@127.0.0.1:8012/" + sc.srv.Listener.Addr().String()
	if len(eps) != 1 || names(eps)[0] != want {
		t.Fatalf("endpoints %v, want [%s]", names(eps), want)
	}

	// The slice catches up: same endpoint, no more probes.
	p.upsertSlice(sc.slice(true))
	if eps, _ = p.ReadyEndpoints(echoAgentKey); len(eps) != 1 || names(eps)[0] != want {
		t.Fatalf("endpoints once the slice says ready %v, want [%s]", names(eps), want)
	}
	before := sc.probes.Load()
	time.Sleep(50 * time.Millisecond)
	if got := sc.probes.Load(); got != before {
		t.Errorf("%d probes after the slice said the replica was ready", got-before)
	}
}

// Replicas that are not routed to directly, or with probing off, wait for
// the kubelet; a pending replica that leaves is no longer probed.
func TestPendingReplicasNotProbed(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(*Config)
		svc    bool
	}{
		{name: "probing off", mutate: func(c *Config) { c.PendingProbeInterval = 0 }},
		{name: "through the Service", mutate: func(c *Config) { c.DirectToPod = false }, svc: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sc := startFakeSidecar(t, 0)
			p := probingPlatform(t, tc.mutate)
			if tc.svc {
				p.upsertService(agentService("ns", "echo", "10.96.0.7", nil))
			}
			p.upsertSlice(sc.slice(false))
			time.Sleep(50 * time.Millisecond)
			if n := sc.probes.Load(); n != 0 {
				t.Errorf("%d probes", n)
			}
			if eps, _ := p.ReadyEndpoints(echoAgentKey); len(eps) != 0 {
				t.Errorf("endpoints %v before the slice says a pod is ready", names(eps))
			}
		})
	}

	t.Run("pending replica deleted", func(t *testing.T) {
		sc := startFakeSidecar(t, 1<<62) // never ready
		p := probingPlatform(t, nil)
		p.upsertSlice(sc.slice(false))
		testenv.Eventually(t, 10*time.Second, func() error {
			if n := sc.probes.Load(); n < 3 {
				return fmt.Errorf("%d probes of a pending replica", n)
			}
			return nil
		})
		p.deleteSlice(sc.slice(false))
		time.Sleep(20 * time.Millisecond) // a probe in flight may finish
		before := sc.probes.Load()
		time.Sleep(50 * time.Millisecond)
		if got := sc.probes.Load(); got != before {
			t.Errorf("%d probes of a replica whose slice is gone", got-before)
		}
		p.mu.RLock()
		defer p.mu.RUnlock()
		if len(p.probes.byAgent) != 0 {
			t.Errorf("probe state left: %v", p.probes.byAgent)
		}
	})
}
