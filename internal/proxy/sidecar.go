// Package proxy is Flint's per-replica sidecar (`flint proxy`): it sits in
// front of one agent, caps its concurrency with a lock-free breaker and a
// small bounded queue, answers 503 + Retry-After when full, reports exact
// time-weighted load for the autoscaler, probes the agent aggressively so
// the replica turns ready early, and drains the way Kubernetes needs
// (readiness fails at once, serving continues while endpoint removal
// propagates, then in-flight work finishes).
//
// Two listeners keep concerns apart: the serving port forwards every path
// to the agent, and the admin port alone serves health, readiness, stats,
// metrics and drain.
package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flint-dev/flint/internal/forward"
	"github.com/flint-dev/flint/internal/h1relay"
	"github.com/flint-dev/flint/internal/telemetry"
	"github.com/flint-dev/flint/internal/wire"
)

const (
	// servingIdleTimeout is longer than any sane client pool's idle timeout
	// (Go's default is 90s), so the gateway closes idle connections first
	// and never sends on one the sidecar is closing.
	servingIdleTimeout = 5 * time.Minute
	// readHeaderTimeout guards against clients that open a connection and
	// trickle headers; bodies and responses are not bounded (streams).
	readHeaderTimeout = 30 * time.Second
)

// Sidecar proxies one agent replica. Create it with New, then call Serve.
type Sidecar struct {
	cfg Config
	log *slog.Logger
	tls *tls.Config // the serving port's, nil for plain HTTP (tls.go)

	br        *breaker // nil when concurrency is unlimited
	acc       *accumulator
	gate      *gate
	prober    *prober
	transport http.RoundTripper  // newTransport
	raw       *forward.Transport // the transport, when the relay borrows its connections (relay.go)
	relayUp   h1relay.Upstream
	relaySrv  *h1relay.Server    // nil: the serving port is servingSrv alone
	serving   h1relay.PortServer // relaySrv, or servingSrv alone
	proxy     *httputil.ReverseProxy
	metrics   *metrics
	errLog    rateLimitedLog

	requests, rejected atomic.Uint64

	retryAfterHdr []string
	rejectedHdr   map[string][]string
	rejectBody    map[string][]byte

	mu                   sync.Mutex // guards the listeners and started
	servingLn, adminLn   net.Listener
	servingSrv, adminSrv *http.Server
	started              bool

	// reqCtx is the parent of every serving-port request; cancelling it at
	// the drain deadline ends streams, WebSockets and queued waits, which
	// http.Server.Shutdown alone would wait on forever.
	reqCtx      context.Context
	abort       context.CancelFunc
	abortedFlag atomic.Bool

	draining  atomic.Bool
	drainReq  chan struct{} // closed by Drain
	drainOnce sync.Once
	drained   chan struct{} // closed once in-flight requests are done
	streams   eventStreams  // open event streams the drain ends early (drain_streams.go)

	readyMu       sync.Mutex // orders OnReadyChange calls
	reportedReady bool

	gatewayToken gatewayToken // gatewaytoken.go
}

// New validates cfg (zero fields take their defaults, see Config) and builds
// a Sidecar. A nil log discards.
func New(cfg Config, log *slog.Logger) (*Sidecar, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Sidecar{
		cfg:       cfg,
		log:       log,
		acc:       newAccumulator(nil),
		gate:      newGate(),
		transport: newTransport(cfg),
		drainReq:  make(chan struct{}),
		drained:   make(chan struct{}),
	}
	var err error
	if s.tls, err = tlsConfig(cfg, log); err != nil {
		return nil, err
	}
	if s.gatewayToken, err = newGatewayToken(cfg, log); err != nil {
		return nil, err
	}
	if cfg.Concurrency > 0 {
		s.br = newBreaker(cfg.Concurrency, cfg.QueueDepth)
	}
	s.prober = newProber(cfg, s.transport)
	s.proxy = s.newReverseProxy()
	// Tracing is on only when the process installed it; otherwise nothing
	// is wrapped and the serving path is unchanged.
	tracing := telemetry.Current()
	s.proxy.Transport = tracing.Transport(s.transport, telemetry.SpanSidecarUpstream)
	s.metrics = newMetrics(s)
	s.reqCtx, s.abort = context.WithCancel(context.Background())

	retryAfter := retryAfterSeconds(cfg.RetryAfter)
	s.retryAfterHdr = retryAfterHeader(retryAfter)
	s.rejectBody = rejectBodies(cfg, retryAfter)
	s.rejectedHdr = map[string][]string{}
	for _, r := range []string{wire.RejectCapacity, wire.RejectNotReady, wire.RejectShutdown, wire.RejectUpstreamUnavailable} {
		s.rejectedHdr[r] = []string{r}
	}

	protocols := new(http.Protocols)
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true) // prior-knowledge h2c from the gateway
	s.servingSrv = &http.Server{
		Handler:           tracing.Handler(s, telemetry.SpanSidecarServe, nil),
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       servingIdleTimeout,
		Protocols:         protocols,
		BaseContext:       func(net.Listener) context.Context { return s.reqCtx },
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	s.serving = s.servingSrv
	if s.relaySrv = s.newRelay(tracing.Enabled()); s.relaySrv != nil {
		s.serving = s.relaySrv
	}
	s.adminSrv = &http.Server{
		Handler:           s.adminHandler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	return s, nil
}

// Listen binds both listeners, so callers learn the real addresses (port 0)
// before Serve. Serve calls it when it has not been called.
func (s *Sidecar) Listen() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.listenLocked()
}

func (s *Sidecar) listenLocked() error {
	if s.servingLn != nil {
		return errors.New("proxy: already listening")
	}
	var lc net.ListenConfig
	sl, err := lc.Listen(context.Background(), "tcp", s.cfg.ServingAddr)
	if err != nil {
		return fmt.Errorf("listen on serving address %s: %w", s.cfg.ServingAddr, err)
	}
	al, err := lc.Listen(context.Background(), "tcp", s.cfg.AdminAddr)
	if err != nil {
		_ = sl.Close()
		return fmt.Errorf("listen on admin address %s: %w", s.cfg.AdminAddr, err)
	}
	sl = servingListener{Listener: sl, config: s.tls, conns: &s.metrics.conns}
	s.servingLn, s.adminLn = sl, al
	return nil
}

// ServingAddr is the bound serving address after Listen, else the configured one.
func (s *Sidecar) ServingAddr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.servingLn != nil {
		return s.servingLn.Addr().String()
	}
	return s.cfg.ServingAddr
}

// AdminAddr is the bound admin address after Listen, else the configured one.
func (s *Sidecar) AdminAddr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.adminLn != nil {
		return s.adminLn.Addr().String()
	}
	return s.cfg.AdminAddr
}

// Ready reports whether the replica should get new requests: the agent has
// answered its probe and no drain has started.
func (s *Sidecar) Ready() bool {
	return s.gate.isReady() && !s.draining.Load()
}

// Stats is the snapshot served at wire.PathStats on the admin port.
func (s *Sidecar) Stats() wire.Stats {
	st := s.acc.snapshot()
	st.RequestsTotal = s.requests.Load()
	st.RejectedTotal = s.rejected.Load()
	st.Concurrency = int64(s.cfg.Concurrency)
	st.Ready = s.Ready()
	st.Draining = s.draining.Load()
	return st
}

// Serve probes the agent and serves both ports until ctx is cancelled or
// Drain is called, then drains (see Config.DrainDelay and DrainTimeout). It
// returns nil after a clean drain, an error wrapping ErrDrainTimeout when
// requests had to be cut, and any listener failure. Serve runs once.
func (s *Sidecar) Serve(ctx context.Context) error {
	s.mu.Lock()
	if s.started {
		s.mu.Unlock()
		return errors.New("proxy: Serve called more than once")
	}
	s.started = true
	if s.servingLn == nil {
		if err := s.listenLocked(); err != nil {
			s.mu.Unlock()
			return err
		}
	}
	s.mu.Unlock()

	// Probing outlives ctx: requests still arrive during the drain delay and
	// need to know whether the agent answers.
	probeCtx, stopProbing := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { s.probeLoop(probeCtx) })
	errc := make(chan error, 2)
	for _, srv := range []struct {
		name  string
		serve func(net.Listener) error
		ln    net.Listener
	}{{"serving", s.serving.Serve, s.servingLn}, {"admin", s.adminSrv.Serve, s.adminLn}} {
		wg.Go(func() {
			if err := srv.serve(srv.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("%s server on %s: %w", srv.name, srv.ln.Addr(), err)
			}
		})
	}
	s.log.Info("sidecar started", "serving", s.servingLn.Addr().String(), "admin", s.adminLn.Addr().String(),
		"upstream", s.cfg.UpstreamAddr, "concurrency", s.cfg.Concurrency, "queueDepth", s.cfg.QueueDepth,
		"tls", s.tls != nil)

	var serveErr error
	select {
	case <-ctx.Done():
		s.log.Info("stop requested; draining")
	case <-s.drainReq:
	case serveErr = <-errc:
		s.log.Error("listener failed; shutting down", "err", serveErr)
	}
	s.Drain()
	err := s.shutdown(errc, serveErr)
	stopProbing()
	wg.Wait()
	if c, ok := s.transport.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
	return err
}
