package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

const (
	maxProbeTimeout = time.Second
	// recheckTimeout matches the kubelet's default probe timeout: once the
	// agent has answered, a busy agent should not be declared unready for
	// being a little slow.
	recheckTimeout = time.Second
	// probeLogEvery throttles "still waiting for the agent" logs.
	probeLogEvery = 10 * time.Second
)

// gate records whether the agent answers and lets requests wait for it
// without polling: ready is an atomic read on the hot path, and waiters block
// on a channel that is closed when the agent turns ready and replaced when it
// stops answering.
type gate struct {
	ready  atomic.Bool
	opened atomic.Bool // the agent has been ready at least once
	mu     sync.Mutex
	ch     chan struct{}
}

func newGate() *gate {
	return &gate{ch: make(chan struct{})}
}

func (g *gate) isReady() bool { return g.ready.Load() }

// wait returns a channel closed once the agent is ready.
func (g *gate) wait() <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.ch
}

// set records the agent's state and reports whether it changed.
func (g *gate) set(ready bool) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ready.Load() == ready {
		return false
	}
	g.ready.Store(ready)
	if ready {
		g.opened.Store(true)
		close(g.ch)
	} else {
		g.ch = make(chan struct{})
	}
	return true
}

// prober checks whether the agent answers: an HTTP GET on the probe path, or
// a TCP connect without one.
type prober struct {
	addr   string
	url    string // empty for TCP
	client *http.Client
	dialer net.Dialer
}

// newProber shares the proxy's transport, so the connection an HTTP probe
// opens is reused by the first request instead of dialling again.
func newProber(cfg Config, transport http.RoundTripper) *prober {
	p := &prober{addr: cfg.UpstreamAddr}
	if cfg.ProbePath != "" {
		p.url = "http://" + cfg.UpstreamAddr + cfg.ProbePath
		p.client = &http.Client{
			Transport: transport,
			// A redirect is an answer: the agent is up.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	return p
}

func (p *prober) probe(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if p.url == "" {
		conn, err := p.dialer.DialContext(ctx, "tcp", p.addr)
		if err != nil {
			return fmt.Errorf("tcp probe of %s: %w", p.addr, err)
		}
		return conn.Close()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.url, nil)
	if err != nil {
		return fmt.Errorf("http probe of %s: %w", p.url, err)
	}
	req.Header.Set("User-Agent", "flint-sidecar-probe")
	resp, err := p.client.Do(req)
	if err != nil {
		return fmt.Errorf("http probe: %w", err)
	}
	// Drain a little so the connection goes back to the pool for reuse.
	_, _ = io.CopyN(io.Discard, resp.Body, 4<<10)
	_ = resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode >= 400 {
		return fmt.Errorf("http probe of %s: status %d", p.url, resp.StatusCode)
	}
	return nil
}

// startupProbeOffset is when, after waiting started, start-up probe number
// attempt runs: at 1/16, 1/8, 1/4 and 1/2 of the probe interval, then at
// every multiple of it. A fast agent is seen within milliseconds of
// listening (cold start is agent start + one probe gap), and a slow one
// costs no more probes than a fixed period after the first interval.
func startupProbeOffset(attempt int, interval time.Duration) time.Duration {
	if attempt <= 4 {
		return interval >> (5 - attempt)
	}
	return time.Duration(attempt-4) * interval
}

// probeLoop probes aggressively until the agent answers, then at the
// recheck period, marking it unready after ProbeFailureThreshold failures in
// a row and going back to aggressive probing so recovery is seen quickly.
func (s *Sidecar) probeLoop(ctx context.Context) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	timeout := s.cfg.ProbeTimeout
	var failures, attempt int
	var waitingSince, lastLog time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		if !s.gate.isReady() {
			if waitingSince.IsZero() {
				waitingSince = time.Now()
			}
			err := s.prober.probe(ctx, timeout)
			if ctx.Err() != nil {
				return
			}
			if err == nil {
				s.gate.set(true)
				s.notifyReady()
				s.log.Info("agent is ready", "upstream", s.cfg.UpstreamAddr, "waited", time.Since(waitingSince).Round(time.Millisecond), "probes", attempt+1)
				waitingSince, lastLog, failures, attempt, timeout = time.Time{}, time.Time{}, 0, 0, s.cfg.ProbeTimeout
				timer.Reset(s.cfg.ProbeRecheckInterval)
				continue
			}
			if errors.Is(err, context.DeadlineExceeded) {
				timeout = min(2*timeout, max(maxProbeTimeout, s.cfg.ProbeTimeout))
			}
			if time.Since(lastLog) >= probeLogEvery {
				lastLog = time.Now()
				s.log.Info("waiting for the agent to answer", "upstream", s.cfg.UpstreamAddr,
					"waited", time.Since(waitingSince).Round(time.Millisecond), "err", err)
			}
			attempt++
			timer.Reset(time.Until(waitingSince.Add(startupProbeOffset(attempt, s.cfg.ProbeInterval))))
			continue
		}
		err := s.prober.probe(ctx, max(recheckTimeout, s.cfg.ProbeTimeout))
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			failures = 0
			timer.Reset(s.cfg.ProbeRecheckInterval)
			continue
		}
		failures++
		if failures >= s.cfg.ProbeFailureThreshold {
			s.gate.set(false)
			s.notifyReady()
			s.log.Warn("agent stopped answering; marking replica not ready", "upstream", s.cfg.UpstreamAddr,
				"failures", failures, "err", err)
			failures = 0
			timer.Reset(s.cfg.ProbeInterval)
			continue
		}
		s.log.Debug("agent probe failed", "failures", failures, "err", err)
		timer.Reset(s.cfg.ProbeRecheckInterval)
	}
}
