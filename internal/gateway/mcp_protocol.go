package gateway

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/flint-dev/flint/api/v1alpha1"
	"github.com/flint-dev/flint/internal/mcp"
	"github.com/flint-dev/flint/internal/mcp/session"
)

// This file holds the gateway's protocol-aware hooks for protocol: mcp and
// a2a agents (docs/mcp.md). HTTP agents never reach past a protocol check.

// protocolCall is the protocol-specific part of a call.
type protocolCall struct {
	// pin is set for an MCP request of an existing session: it may go only
	// to the replica that issued the session.
	pin *pinnedSession
	// agentCard is set for a request for an A2A agent's card, whose URLs
	// are rewritten to the gateway's.
	agentCard bool
}

// pinnedSession is a session token opened: where the session lives, and
// the token the client holds (echoed back instead of re-sealing).
type pinnedSession struct {
	route session.Route
	token string
}

// mcpState is the gateway's MCP state: the session keys, and the session
// streams it holds open (ended at shutdown so clients reconnect to another
// gateway instance, which can route them with the same keys).
type mcpState struct {
	keys      *session.Keyring
	randomKey bool
	warnOnce  sync.Once
	keepAlive time.Duration
	log       *slog.Logger
	streams   streamSet
}

func newMCPState(cfg MCPConfig, log *slog.Logger) (*mcpState, error) {
	m := &mcpState{keepAlive: cfg.SSEKeepAlive, log: log}
	if cfg.SessionKeyFile == "" {
		m.keys, m.randomKey = session.RandomKeyring(), true
		return m, nil
	}
	keys, err := session.LoadKeyring(cfg.SessionKeyFile)
	if err != nil {
		return nil, err
	}
	m.keys = keys
	return m, nil
}

// seal wraps a replica's session id into the token the client gets.
func (m *mcpState) seal(scope string, r session.Route) string {
	if m.randomKey {
		m.warnOnce.Do(func() {
			m.log.Warn("MCP sessions are sealed with a random per-process key: they will not survive a gateway restart, " +
				"and other gateway instances cannot route them; set -session-key-file")
		})
	}
	return m.keys.Seal(scope, r)
}

// prepareProtocol reads what protocol-aware routing needs from the client's
// request before it is proxied. An error is the client's answer.
func (g *Gateway) prepareProtocol(r *http.Request, c *call) error {
	switch c.agent.Spec.Protocol {
	case v1alpha1.ProtocolMCP:
		return g.prepareMCP(r, c)
	case v1alpha1.ProtocolA2A:
		prepareA2A(r, c)
	}
	return nil
}

// prepareMCP pins a session-era request that carries a session id to the
// replica sealed in it, and gives the replica back its own session id.
// Requests without one (initialize, stateless 2026-07-28 traffic) are
// balanced freely. Stateless-era requests are left alone even if they
// carry a session id: that era has no sessions and servers ignore it.
func (g *Gateway) prepareMCP(r *http.Request, c *call) error {
	token := r.Header.Get(mcp.HeaderSessionID)
	if token == "" || mcp.Stateless(r.Header.Get(mcp.HeaderProtocolVersion)) {
		return nil
	}
	route, err := g.mcp.keys.Open(c.key.String(), token)
	if err != nil {
		return errSessionNotFound(c.key, "the session id was not issued by this gateway for this agent, or its key has changed")
	}
	c.proto.pin = &pinnedSession{route: route, token: token}
	r.Header.Set(mcp.HeaderSessionID, route.UpstreamID)
	return nil
}

// requestContext bounds a request by the agent's timeouts.request, except
// an MCP session's standalone stream (a GET with a session id): it carries
// the server's messages for as long as the session lives, and cutting it
// would make clients reconnect, each time counting as a failed attempt.
// It ends when the client leaves, the session's replica goes away, or the
// gateway shuts down.
func requestContext(r *http.Request, a *v1alpha1.Agent, timeout time.Duration) (context.Context, context.CancelFunc) {
	if isSessionStream(r, a) {
		return context.WithCancel(r.Context())
	}
	return context.WithTimeout(r.Context(), timeout)
}

func isSessionStream(r *http.Request, a *v1alpha1.Agent) bool {
	return a.Spec.Protocol == v1alpha1.ProtocolMCP && r.Method == http.MethodGet &&
		r.Header.Get(mcp.HeaderSessionID) != "" && !mcp.Stateless(r.Header.Get(mcp.HeaderProtocolVersion))
}

// modifyResponse is the proxy's response hook: MCP session ids are wrapped,
// A2A agent cards rewritten, and MCP and A2A event streams kept alive.
func (g *Gateway) modifyResponse(res *http.Response) error {
	c := callFrom(res.Request.Context())
	if c == nil {
		return nil
	}
	switch c.agent.Spec.Protocol {
	case v1alpha1.ProtocolMCP:
		g.wrapSessionID(res, c)
	case v1alpha1.ProtocolA2A:
		if c.proto.agentCard {
			return g.rewriteAgentCard(res, c)
		}
	default:
		return nil
	}
	if isEventStream(res.Header) {
		g.serveEventStream(res, c)
	}
	return nil
}

// wrapSessionID replaces a session id the replica issued with a token that
// routes back to that replica.
func (g *Gateway) wrapSessionID(res *http.Response, c *call) {
	upstream := res.Header.Get(mcp.HeaderSessionID)
	if upstream == "" {
		return
	}
	if pin := c.proto.pin; pin != nil && pin.route.UpstreamID == upstream {
		res.Header.Set(mcp.HeaderSessionID, pin.token)
		return
	}
	rb, ok := res.Body.(*releasingBody)
	if !ok {
		// Every proxied response body is a releasingBody; without it the
		// replica is unknown and the session cannot be routed.
		g.log.Error("cannot tell which replica issued an MCP session; dropping its id", "agent", c.key)
		res.Header.Del(mcp.HeaderSessionID)
		return
	}
	route := session.Route{Addr: rb.b.Addr, Replica: rb.b.Replica, UpstreamID: upstream}
	res.Header.Set(mcp.HeaderSessionID, g.mcp.seal(c.key.String(), route))
}
