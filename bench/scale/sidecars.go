package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/flint-dev/flint/internal/wire"
)

// idleAdminPort is the admin port in the slices of the agents nobody
// invokes: one listener on every local address answers there for all of
// their replicas (10,000 at 2,000 agents), as idle sidecars would, so the
// autoscaler's scrapes cost what real ones do (a request and a JSON body,
// on a kept-alive connection or a new one) instead of a refused connection.
const idleAdminPort = 9022

// sidecarStats keeps a fake sidecar's counters the way the real one does
// (internal/proxy): in flight, admitted, and the integral of in flight.
type sidecarStats struct {
	mu       sync.Mutex
	start    time.Time
	last     time.Time
	inFlight int64
	integral float64
	requests uint64
}

func newSidecarStats() *sidecarStats {
	now := time.Now()
	return &sidecarStats{start: now, last: now}
}

// advance accrues the in-flight integral up to now; s.mu is held.
func (s *sidecarStats) advance(now time.Time) {
	s.integral += float64(s.inFlight) * now.Sub(s.last).Seconds()
	s.last = now
}

func (s *sidecarStats) begin() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance(time.Now())
	s.inFlight++
	s.requests++
}

func (s *sidecarStats) end() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance(time.Now())
	s.inFlight--
}

func (s *sidecarStats) snapshot() wire.Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	s.advance(now)
	return wire.Stats{UptimeSeconds: now.Sub(s.start).Seconds(), InFlight: s.inFlight, InFlightSeconds: s.integral,
		RequestsTotal: s.requests, Concurrency: 10, Ready: true}
}

func (s *sidecarStats) serveStats(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != wire.PathStats {
		w.Write([]byte("ok\n")) // health and readiness
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(s.snapshot())
}

// fakeSidecars listens on the serving and admin ports of n pod network
// addresses: the replicas of the agents the benchmark invokes. The serving
// port answers every request with 200; the admin port serves Stats that
// count those requests, as the real sidecar's do.
func fakeSidecars(n int) (addrs []string, stop func(), err error) {
	var servers []*http.Server
	stop = func() {
		for _, s := range servers {
			s.Close()
		}
	}
	for i := range n {
		ip := fmt.Sprintf("10.244.2.%d", i+1)
		stats := newSidecarStats()
		serve := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			stats.begin()
			defer stats.end()
			w.Write([]byte("ok\n"))
		})
		for _, port := range []int{servingPort, adminPort} {
			h := serve
			if port == adminPort {
				h = stats.serveStats
			}
			if err := listen(&servers, net.JoinHostPort(ip, strconv.Itoa(port)), h); err != nil {
				stop()
				return nil, nil, fmt.Errorf("fake sidecar: %w", err)
			}
		}
		addrs = append(addrs, ip)
	}
	return addrs, stop, nil
}

// idleSidecars answers on idleAdminPort of every local address with the
// Stats of a sidecar that has served nothing.
func idleSidecars() (stop func(), err error) {
	var servers []*http.Server
	stats := newSidecarStats()
	if err := listen(&servers, net.JoinHostPort("", strconv.Itoa(idleAdminPort)), stats.serveStats); err != nil {
		return nil, fmt.Errorf("idle sidecars: %w", err)
	}
	return func() { servers[0].Close() }, nil
}

func listen(servers *[]*http.Server, addr string, h http.HandlerFunc) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	s := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	*servers = append(*servers, s)
	go func() { _ = s.Serve(ln) }()
	return nil
}
