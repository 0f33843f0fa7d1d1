package bridge

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// session is one MCP session: the SDK's streamable HTTP transport on the
// client's side and a child of its own on the other. The bridge relays
// JSON-RPC messages between the two without interpreting them, so the
// server sees the client's own initialize (its capabilities, its protocol
// version) and every method, including ones the bridge has never heard of,
// passes through.
type session struct {
	id    string
	http  *mcp.StreamableServerTransport
	hconn mcp.Connection
	child *child

	ctx    context.Context // ends when the session closes; bounds the relays
	cancel context.CancelFunc

	ending   atomic.Bool  // closeSession has begun
	active   atomic.Int32 // requests in progress
	lastSeen atomic.Int64 // unix nanos of the last request's start or end
	once     sync.Once
	closed   chan struct{}
}

// newSession starts a child and connects it to a fresh transport.
func (b *Bridge) newSession() (*session, error) {
	id := rand.Text()
	ctx, cancel := context.WithCancel(context.Background())
	c, err := b.startChild(ctx, "session "+id[:8])
	if err != nil {
		cancel()
		return nil, err
	}
	t := &mcp.StreamableServerTransport{SessionID: id}
	hconn, err := t.Connect(ctx)
	if err != nil {
		cancel()
		status, _ := c.stop()
		return nil, fmt.Errorf("connect the session transport (child %s): %w", status, err)
	}
	s := &session{id: id, http: t, hconn: hconn, child: c, ctx: ctx, cancel: cancel, closed: make(chan struct{})}
	s.touch()
	go s.relayToChild()
	go func() {
		reason := s.relayToClient()
		b.closeSession(s, reason)
	}()
	return s, nil
}

// relayToChild forwards the client's messages to the child until the
// session closes.
func (s *session) relayToChild() {
	for {
		msg, err := s.hconn.Read(s.ctx)
		if err != nil {
			return
		}
		if err := s.child.conn.Write(s.ctx, msg); err != nil {
			return
		}
	}
}

// relayToClient forwards the child's messages to the client until the
// child's output ends, and says why it did. Responses find the HTTP request
// of their call. Notifications and server requests go to the session's
// standalone stream (GET): a relay below the SDK cannot tell which call a
// notification belongs to (the SDK relates them through its own handler's
// context), so progress notifications arrive there too, which the spec
// allows; without a standalone stream open they are dropped.
func (s *session) relayToClient() string {
	for {
		msg, err := s.child.conn.Read(s.ctx)
		if err != nil {
			if s.ctx.Err() != nil {
				return "closed"
			}
			return "the server's output ended: " + err.Error()
		}
		if err := s.hconn.Write(s.ctx, msg); err != nil && s.ctx.Err() != nil {
			return "closed"
		}
		// Other write errors concern one message (its call's request is
		// gone, or no stream is open for it); the session goes on.
	}
}

// serve hands one HTTP request to the session's transport.
func (s *session) serve(w http.ResponseWriter, r *http.Request) {
	s.active.Add(1)
	s.touch()
	defer func() {
		s.touch()
		s.active.Add(-1)
	}()
	s.http.ServeHTTP(w, r)
}

func (s *session) touch() { s.lastSeen.Store(time.Now().UnixNano()) }

// idleFor is how long the session has had no request in progress, or 0.
func (s *session) idleFor(now time.Time) time.Duration {
	if s.active.Load() > 0 {
		return 0
	}
	return now.Sub(time.Unix(0, s.lastSeen.Load()))
}

// closeSession ends s: its id gets 404 from now on, its HTTP streams end,
// and its child stops in the spec's order. The session stays listed until
// the child is gone, so a shutdown waits for stops already under way. It
// runs once per session, whoever asks first; every caller waits for it.
func (b *Bridge) closeSession(s *session, reason string) {
	s.once.Do(func() {
		s.ending.Store(true)
		_ = s.hconn.Close()
		s.cancel()
		status, took := s.child.stop()
		b.mu.Lock()
		delete(b.sessions, s.id)
		b.metrics.children.Set(float64(len(b.sessions)))
		b.mu.Unlock()
		b.log.Info("session ended", "session", s.id, "reason", reason, "child", status, "childStop", took.Round(time.Millisecond))
		close(s.closed)
	})
	<-s.closed
}
