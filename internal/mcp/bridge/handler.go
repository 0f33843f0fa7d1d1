package bridge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	flintmcp "github.com/flint-dev/flint/internal/mcp"
)

// maxBody bounds a request body, as the SDK's own handler does by default.
const maxBody = mcp.DefaultMaxRequestBodyBytes

// crossOrigin refuses browser requests from other origins (the spec asks
// servers to validate Origin); clients that are not browsers send no
// Sec-Fetch-Site or Origin and pass.
var crossOrigin = http.NewCrossOriginProtection()

func (b *Bridge) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if b.guard(w, r) {
		return
	}
	switch r.URL.Path {
	case "/healthz":
		b.health(w)
	case "/metrics":
		promhttp.HandlerFor(b.metrics.reg, promhttp.HandlerOpts{}).ServeHTTP(w, r)
	case b.cfg.Path:
		if err := crossOrigin.Check(r); err != nil {
			http.Error(w, err.Error(), http.StatusForbidden)
			return
		}
		b.inFlight.Add(1)
		defer b.inFlight.Add(-1)
		b.serveMCP(w, r)
	default:
		http.NotFound(w, r)
	}
}

// health is readiness: ready once a probe child has completed the MCP
// handshake (so the command exists and speaks MCP), and not while draining.
func (b *Bridge) health(w http.ResponseWriter) {
	switch {
	case b.stopping.Load():
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
	case !b.ready.Load():
		http.Error(w, "the MCP server has not yet answered a probe", http.StatusServiceUnavailable)
	default:
		_, _ = w.Write([]byte("ok"))
	}
}

func (b *Bridge) serveMCP(w http.ResponseWriter, r *http.Request) {
	id := r.Header.Get(flintmcp.HeaderSessionID)
	if id == "" {
		if r.Method != http.MethodPost {
			http.Error(w, "Bad Request: "+r.Method+" needs an Mcp-Session-Id header", http.StatusBadRequest)
			return
		}
		b.startSession(w, r)
		return
	}
	b.mu.Lock()
	s := b.sessions[id]
	b.mu.Unlock()
	if s == nil || s.ending.Load() {
		// The spec's answer for a session that is over: the client starts a new one.
		http.Error(w, "session not found", http.StatusNotFound)
		return
	}
	switch r.Method {
	case http.MethodPost:
		s.serve(w, r)
	case http.MethodGet:
		// The session's standalone stream ends at shutdown, before calls in
		// flight are waited for; it would otherwise hold the drain.
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		defer context.AfterFunc(b.streams, cancel)()
		s.serve(w, r.WithContext(ctx))
	case http.MethodDelete:
		go b.closeSession(s, "the client ended it")
		w.WriteHeader(http.StatusNoContent)
	default:
		w.Header().Set("Allow", "GET, POST, DELETE")
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
	}
}

// startSession handles a POST without a session id. Only initialize starts
// a session, and with it a child. A stateless-era request (2026-07-28) gets
// the error the spec defines for an unsupported version, listing the
// session-era versions, so dual-era clients fall back to initialize.
func (b *Bridge) startSession(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "failed to read body", http.StatusBadRequest)
		return
	}
	msg, err := jsonrpc.DecodeMessage(body)
	req, ok := msg.(*jsonrpc.Request)
	if err != nil || !ok {
		http.Error(w, "Bad Request: expected one JSON-RPC request (initialize) without a session", http.StatusBadRequest)
		return
	}
	version := r.Header.Get(flintmcp.HeaderProtocolVersion)
	switch {
	case req.Method != "initialize" && flintmcp.Stateless(version):
		data, _ := json.Marshal(map[string]any{"supported": flintmcp.LegacyVersions, "requested": version})
		writeError(w, http.StatusBadRequest, req.ID, codeUnsupportedProtocolVersion,
			"protocol version "+version+" is not supported: this stdio server is bridged with sessions; use initialize", data)
		return
	case req.Method != "initialize":
		http.Error(w, "Bad Request: missing Mcp-Session-Id; start a session with initialize", http.StatusBadRequest)
		return
	}
	if !b.admitNew() {
		b.metrics.refused.WithLabelValues("Full").Inc()
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, req.ID, jsonrpc.CodeInternalError,
			"no new session: every session is busy at the bridge's -max-sessions, or it is shutting down; retry later", nil)
		return
	}
	s, err := b.newSession()
	b.admit(s)
	if err != nil {
		b.log.Error("cannot start a session's child", "err", err)
		writeError(w, http.StatusBadGateway, req.ID, jsonrpc.CodeInternalError, "cannot start the MCP server: "+err.Error(), nil)
		return
	}
	b.log.Info("session started", "session", s.id, "pid", s.child.cmd.Process.Pid)
	r.Body = io.NopCloser(bytes.NewReader(body))
	s.serve(w, r)
}

// codeUnsupportedProtocolVersion is the spec's error for a protocol version
// the server does not speak (SEP-2575).
const codeUnsupportedProtocolVersion = -32022

func writeError(w http.ResponseWriter, status int, id jsonrpc.ID, code int64, msg string, data json.RawMessage) {
	out, _ := jsonrpc.EncodeMessage(&jsonrpc.Response{ID: id, Error: &jsonrpc.Error{Code: code, Message: msg, Data: data}})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(out)
}
