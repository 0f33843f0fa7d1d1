// Package bridge serves a stdio MCP server over streamable HTTP: the
// engine of `flint stdio-bridge -- CMD ARGS`.
//
// Every MCP session gets a child process of its own, started on the
// session's initialize and stopped when the session ends (DELETE, idle
// timeout, or the bridge's shutdown). Stdio servers are written for one
// client each and often keep per-client state (open files, a browser, a
// conversation), so sharing one child between sessions would mix clients
// up. MaxSessions caps the children.
//
// The official go-sdk does the protocol work on both sides: its
// StreamableServerTransport serves each session's HTTP requests and event
// streams, and its CommandTransport runs the child, framing JSON-RPC on the
// pipes and stopping it in the spec's order. The bridge relays messages
// between the two, manages sessions, and shuts down the way Kubernetes
// expects (see Run).
package bridge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flint-dev/flint/internal/hostcheck"
)

// Bridge serves one stdio MCP server command over streamable HTTP.
type Bridge struct {
	cfg  Config
	argv []string
	log  *slog.Logger
	out  io.Writer // children's stderr goes here, prefixed per session

	outMu    sync.Mutex
	mu       sync.Mutex
	sessions map[string]*session
	starting int // sessions whose child is being started, counted against MaxSessions

	ready    atomic.Bool
	stopping atomic.Bool
	inFlight atomic.Int64 // MCP requests being served
	// streams is the parent of every standalone stream (GET): cancelled at
	// shutdown so those end while calls in flight go on.
	streams    context.Context
	endStreams context.CancelFunc

	addr chan string // the bound address, once known

	reaper  *orphanReaper     // reaps orphans when the bridge is PID 1 (reaper.go)
	hosts   *hostcheck.Policy // DNS-rebinding protection (guard.go)
	metrics *bridgeMetrics
}

// New validates cfg and prepares a bridge for the command argv. Children's
// stderr goes to out with a prefix naming their session.
func New(cfg Config, argv []string, log *slog.Logger, out io.Writer) (*Bridge, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if len(argv) == 0 {
		return nil, errors.New("no command to run: give it after --, as in flint stdio-bridge -- npx -y @modelcontextprotocol/server-everything")
	}
	hosts, err := hostcheck.New(cfg.listenAddr(), "", cfg.AllowedHosts)
	if err != nil {
		return nil, fmt.Errorf("-allowed-hosts: %w", err)
	}
	b := &Bridge{cfg: cfg, argv: argv, log: log, out: out, sessions: map[string]*session{}, addr: make(chan string, 1),
		reaper: newOrphanReaper(), hosts: hosts, metrics: newBridgeMetrics()}
	b.streams, b.endStreams = context.WithCancel(context.Background())
	return b, nil
}

// Addr returns the address the bridge listens on once Run has bound it,
// or "" if Run could not listen.
func (b *Bridge) Addr() string {
	a := <-b.addr
	b.addr <- a
	return a
}

// Run serves until ctx ends (SIGTERM), then shuts down in order:
//
//  1. readiness fails and new sessions are refused;
//  2. standalone streams end cleanly (clients reconnect elsewhere) and the
//     listener closes;
//  3. calls in flight finish, within the drain timeout;
//  4. every child stops, in parallel, in the spec's order: close stdin,
//     wait, SIGTERM, wait, SIGKILL (2 x ChildStopWait at most);
//
// and returns nil, so the process exits 0 with its logs written. Only a
// failure to listen is an error.
func (b *Bridge) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", b.cfg.listenAddr())
	if err != nil {
		b.addr <- ""
		return fmt.Errorf("listen on %s: %w", b.cfg.listenAddr(), err)
	}
	b.addr <- ln.Addr().String()
	defer b.startReaper()()
	srv := &http.Server{
		Handler:           b,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(b.log.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	b.log.Info("stdio bridge listening", "addr", ln.Addr().String(), "path", b.cfg.Path, "command", b.argv,
		"maxSessions", b.cfg.MaxSessions, "drainTimeout", b.cfg.drainTimeout(), "childStopWait", b.cfg.ChildStopWait)

	bg, stopBackground := context.WithCancel(context.Background())
	var background sync.WaitGroup
	background.Go(func() { b.probeUntilReady(bg) })
	background.Go(func() { b.reapIdle(bg) })

	select {
	case <-ctx.Done():
	case err := <-served:
		b.log.Error("server failed; shutting down", "err", err)
	}
	start := time.Now()
	b.stopping.Store(true)
	stopBackground()
	b.endStreams()
	b.drain(srv)
	b.stopChildren()
	background.Wait()
	b.log.Info("stdio bridge stopped", "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// drain closes the listener and waits for calls in flight. It stops
// waiting as soon as no request is in progress: Shutdown alone would also
// wait for connections that are open but quiet, up to 5s for ones that
// have not sent a request yet (which an HTTP client's pool may hold), and
// a request that has not reached the bridge is not a call in flight.
func (b *Bridge) drain(srv *http.Server) {
	timeout := b.cfg.drainTimeout()
	b.log.Info("draining: no new sessions, waiting for calls in flight", "sessions", b.count(), "calls", b.inFlight.Load(), "timeout", timeout)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	shut := make(chan error, 1)
	go func() { shut <- srv.Shutdown(ctx) }()
	poll := time.NewTicker(10 * time.Millisecond)
	defer poll.Stop()
	for {
		select {
		case err := <-shut:
			if err != nil {
				b.log.Warn("drain timeout: cutting the calls still in flight", "calls", b.inFlight.Load(), "timeout", timeout)
				_ = srv.Close()
			}
			return
		case <-poll.C:
			if b.inFlight.Load() == 0 {
				_ = srv.Close()
				<-shut
				return
			}
		}
	}
}

// stopChildren ends every session, stopping their children in parallel.
// Each stop takes at most 2 x ChildStopWait (SIGKILL is not ignorable);
// the wait here is bounded anyway, since the grace period is.
func (b *Bridge) stopChildren() {
	b.mu.Lock()
	all := make([]*session, 0, len(b.sessions))
	for _, s := range b.sessions {
		all = append(all, s)
	}
	b.mu.Unlock()
	if len(all) == 0 {
		return
	}
	b.log.Info("stopping children", "count", len(all))
	var wg sync.WaitGroup
	for _, s := range all {
		wg.Go(func() { b.closeSession(s, "bridge shutting down") })
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(b.cfg.childrenBudget() + shutdownMargin/2):
		b.log.Warn("children still stopping at the end of their budget; exiting")
	}
}

// count is the number of open sessions.
func (b *Bridge) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.sessions)
}

// reapIdle ends sessions idle for longer than SessionIdleTimeout: a client
// that forgets its session (many never send DELETE) must not keep a child.
func (b *Bridge) reapIdle(ctx context.Context) {
	every := min(b.cfg.SessionIdleTimeout/4, time.Minute)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			b.mu.Lock()
			var idle []*session
			for _, s := range b.sessions {
				if s.idleFor(now) > b.cfg.SessionIdleTimeout {
					idle = append(idle, s)
				}
			}
			b.mu.Unlock()
			for _, s := range idle {
				b.metrics.ended.WithLabelValues("idle").Inc()
				go b.closeSession(s, "idle for "+b.cfg.SessionIdleTimeout.String())
			}
		}
	}
}
