package gateway

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/textproto"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flint-dev/flint/api/v1alpha1"
	"github.com/flint-dev/flint/internal/h1relay"
	"github.com/flint-dev/flint/internal/mcp"
	"github.com/flint-dev/flint/internal/mcp/session"
	"github.com/flint-dev/flint/internal/platform"
	"github.com/flint-dev/flint/internal/platform/platformtest"
	"github.com/flint-dev/flint/internal/proxy"
	"github.com/flint-dev/flint/internal/testutil/rawhttp"
	"github.com/flint-dev/flint/internal/wire"
)

// FuzzGatewayHeaders sends raw HTTP/1.1 requests with fuzzed headers —
// arbitrary extra lines, Connection lists, Content-Length and
// Transfer-Encoding, X-Forwarded-For, traceparent, Mcp-Session-Id,
// Authorization, API keys and guesses of the sidecar token — through the
// gateway's real server, a real sidecar and an agent that records what it
// receives, and checks:
//
//   - nothing panics (gateway handler or either server);
//   - the answer is a well-formed response with a status the gateway, its
//     HTTP server or the agent may give (never 5xx, never the sidecar's 403:
//     the agent is healthy and the gateway always holds the token);
//   - a request the gateway answered itself never reached the agent whole
//     (a body that turns out bad mid-stream, e.g. too long when chunked,
//     may have been started: it cannot be unsent, but it never completes);
//   - a private agent never sees a request without a valid API key, and
//     never sees the key;
//   - the agent never sees hop-by-hop headers, nor any header the client
//     named in Connection (other than those the proxies set themselves),
//     nor the sidecar token, nor the client's Forwarded/X-Forwarded-*;
//     X-Forwarded-For is exactly the two hops (client, gateway);
//   - an MCP session id reaches the replica only unsealed (the replica's
//     own id), never as the client's token;
//   - traceparent passes through unchanged (tracing off).
func FuzzGatewayHeaders(f *testing.F) {
	rig := newGatewayHeaderRig(f)
	type seed struct {
		agent                                                      uint8
		method, extra, conn, cl, te, xff, traceparent, sess, authz string
		flags                                                      uint8
		body                                                       string
	}
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	for _, s := range []seed{
		{method: "GET", flags: fuzzKeyHeader},
		{agent: 1, method: "GET"},
		{method: "POST", cl: "5", body: "hello", flags: fuzzKeyBearer},
		// Hop-by-hop smuggling: names in Connection, and ones that must be overwritten.
		{agent: 1, method: "GET", conn: "X-Forwarded-For, X-Forwarded-Prefix, X-Secret, Keep-Alive", extra: "X-Secret: s\r\nKeep-Alive: timeout=5", xff: "6.6.6.6"},
		{agent: 1, method: "GET", conn: "Flint-Gateway-Token, Traceparent", traceparent: tp, flags: fuzzGuessToken},
		{agent: 1, method: "GET", conn: "close, Upgrade", extra: "Upgrade: websocket\r\nSec-WebSocket-Version: 13"},
		{agent: 1, method: "GET", extra: "Proxy-Connection: keep-alive\r\nProxy-Authorization: Basic eDp5\r\nTe: trailers, deflate\r\nTrailer: X-T"},
		// Framing: CL.TE, TE.CL, two lengths, unknown codings, bad chunks.
		{agent: 1, method: "POST", cl: "50", te: "chunked", body: "0\r\n\r\nGET /v1/agents/default/open/smuggled HTTP/1.1\r\nHost: x\r\n\r\n"},
		{agent: 1, method: "POST", cl: "3", extra: "Content-Length: 4", body: "abcd"},
		{agent: 1, method: "POST", te: "gzip, chunked", body: "0\r\n\r\n"},
		{agent: 1, method: "POST", te: "chunked", body: "5\r\nhello\r\n0\r\n\r\n"},
		{agent: 1, method: "POST", te: "chunked", body: "zz\r\nhello\r\n0\r\n\r\n"},
		{agent: 1, method: "POST", te: "chunked", body: strings.Repeat("100\r\n"+strings.Repeat("x", 256)+"\r\n", 3) + "0\r\n\r\n"},
		{agent: 1, method: "POST", te: "chunked", body: "5\r\nhel"},         // cut short: the client gives up
		{method: "0", cl: "0", te: "Chunked", body: "0\r\n"},                // trailer never comes
		{agent: 1, method: "POST", te: "chunked", xff: "\x85\xf3\x96\x8eZ"}, // obs-text
		{agent: 1, method: "POST", cl: "99999999"},
		{agent: 1, method: "POST", cl: "-1"},
		{agent: 1, method: "POST", cl: "300", body: strings.Repeat("y", 300)}, // past the replay limit
		{agent: 1, method: "POST", extra: "Expect: 100-continue", cl: "2", body: "hi"},
		{agent: 1, method: "POST", extra: "Expect: teapot"},
		// Forwarding headers a client may try to spoof.
		{agent: 1, method: "GET", xff: "1.2.3.4, 5.6.7.8", extra: "X-Forwarded-For: 9.9.9.9\r\nForwarded: for=1.1.1.1\r\nX-Forwarded-Host: evil\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Prefix: /evil"},
		{agent: 1, method: "GET", traceparent: tp, extra: "Tracestate: congo=t61rcWkgMzE"},
		{agent: 1, method: "GET", traceparent: "garbage"},
		// Header injection and odd shapes.
		{agent: 1, method: "GET", extra: "X-A: b\r\nX-Forwarded-For: 1.1.1.1\r\n folded"},
		{agent: 1, method: "GET", extra: "Bad Name: x"},
		{agent: 1, method: "GET", extra: "X-Null: a\x00b"},
		{agent: 1, method: "GET", extra: "Host: other"},
		{agent: 1, method: "HEAD"},
		{agent: 1, method: "get"},
		// Credentials.
		{method: "GET", authz: "Bearer wrong"},
		{method: "GET", authz: "Basic dXNlcjpwYXNz"},
		{method: "GET", flags: fuzzKeyHeader | fuzzKeyBearer},
		{agent: 1, method: "GET", flags: fuzzKeyBearer}, // a client (flint invoke with $FLINT_TOKEN) that always sends its key
		{agent: 1, method: "GET", flags: fuzzKeyHeader, authz: "Bearer agent-own-token"},
		{method: "GET", extra: "X-API-Key: " + fuzzAPIKey + "\r\nX-API-Key: other"},
		{method: "GET", flags: fuzzKeyBearer | fuzzGuessToken, extra: "Flint-Gateway-Token: second"},
		// MCP sessions: forged, sealed for this replica, stateless era.
		{agent: 2, method: "POST", flags: fuzzKeyHeader, sess: "not-a-session", body: `{"jsonrpc":"2.0","id":1,"method":"ping"}`, cl: "40"},
		{agent: 2, method: "POST", flags: fuzzKeyHeader | fuzzSealedSession | fuzzSessionEra, body: `{"jsonrpc":"2.0","id":1,"method":"ping"}`, cl: "40"},
		{agent: 2, method: "GET", flags: fuzzKeyHeader | fuzzSealedSession | fuzzSessionEra},
		{agent: 2, method: "DELETE", flags: fuzzKeyHeader | fuzzSealedSession, conn: "Mcp-Session-Id"},
		{agent: 2, method: "POST", flags: fuzzKeyHeader, sess: "anything", extra: "Mcp-Protocol-Version: 2026-07-28"},
		{agent: 2, method: "POST", flags: fuzzKeyHeader | fuzzSealedSession, sess: "first-one", extra: "Mcp-Protocol-Version: 2025-06-18"},
	} {
		f.Add(s.agent, s.method, s.extra, s.conn, s.cl, s.te, s.xff, s.traceparent, s.sess, s.authz, s.flags, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, agent uint8, method, extra, conn, cl, te, xff, traceparent, sess, authz string, flags uint8, body []byte) {
		if strings.ContainsAny(method, " \t\r\n") {
			return // not our request line any more: the answer would be for another request
		}
		if len(method+extra+conn+cl+te+xff+traceparent+sess+authz)+len(body) > fuzzMaxInput {
			return
		}
		if method == "" {
			method = http.MethodGet
		}
		rig.check(t, fuzzRequest{
			agent: fuzzAgents[int(agent)%len(fuzzAgents)], method: method, extra: extra, conn: conn, cl: cl, te: te,
			xff: xff, traceparent: traceparent, sess: sess, authz: authz, flags: flags, body: body,
		})
	})
}

// Flags of a fuzzed request: what the harness adds that the fuzzer cannot guess.
const (
	fuzzKeyHeader     = 1 << iota // X-API-Key: the valid key
	fuzzKeyBearer                 // Authorization: Bearer the valid key
	fuzzGuessToken                // a client's guess at the sidecar token
	fuzzSealedSession             // Mcp-Session-Id: a valid token for the replica
	fuzzSessionEra                // Mcp-Protocol-Version: 2025-11-25
)

const (
	fuzzAPIKey       = "fuzz-api-key-3f9c2e71d0a84b6b"
	fuzzUpstreamSess = "replica-own-session-7"
	fuzzMaxBody      = 512
	// fuzzMaxInput bounds what one input may add to a request, so inputs
	// stay small and quick to minimise.
	fuzzMaxInput = 2048
)

// fuzzAgent is one of the agents behind the gateway.
type fuzzAgent struct {
	name     string
	public   bool
	protocol v1alpha1.Protocol
}

var fuzzAgents = []fuzzAgent{
	{name: "echo"},
	{name: "open", public: true},
	{name: "tools", protocol: v1alpha1.ProtocolMCP},
}

type fuzzRequest struct {
	agent                                                      fuzzAgent
	method, extra, conn, cl, te, xff, traceparent, sess, authz string
	flags                                                      uint8
	body                                                       []byte
}

// gatewayParsed is the request as the gateway's server parsed it.
type gatewayParsed struct {
	header http.Header
	host   string
}

type gatewayHeaderRig struct {
	addr     string
	token    string
	sealed   string
	tracing  bool
	ids      *rawhttp.IDs
	agent    rawhttp.Agent
	parsed   sync.Map // id -> *gatewayParsed
	panicked rawhttp.PanicLog
}

func newGatewayHeaderRig(tb testing.TB) *gatewayHeaderRig {
	tb.Helper()
	rig := &gatewayHeaderRig{token: rawhttp.RandomHex(tb, 16), ids: rawhttp.NewIDs(tb)}
	log := slog.New(slog.NewTextHandler(&rig.panicked, &slog.HandlerOptions{Level: slog.LevelDebug}))

	agentSrv := &http.Server{Handler: &rig.agent, ReadHeaderTimeout: 5 * time.Second}
	agentLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	go agentSrv.Serve(agentLn)
	tb.Cleanup(func() { agentSrv.Close() })

	cfg := proxy.DefaultConfig()
	cfg.ServingAddr, cfg.AdminAddr, cfg.UpstreamAddr = "127.0.0.1:0", "127.0.0.1:0", agentLn.Addr().String()
	cfg.DrainDelay, cfg.DrainTimeout, cfg.GatewayToken = 0, time.Second, rig.token
	cfg.EventLoops = *eventLoops
	sc, err := proxy.New(cfg, log)
	if err != nil {
		tb.Fatal(err)
	}
	if err := sc.Listen(); err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sc.Serve(ctx) }()
	tb.Cleanup(func() { cancel(); <-done })
	for deadline := time.Now().Add(5 * time.Second); !sc.Ready(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			tb.Fatal("sidecar never became ready")
		}
	}
	ep := platform.Endpoint{Addr: sc.ServingAddr(), AdminAddr: sc.AdminAddr(), Replica: "fuzz-1"}

	var agents []*v1alpha1.Agent
	for _, fa := range fuzzAgents {
		a := testAgent(0)
		a.Name, a.Spec.Public, a.Spec.Protocol = fa.name, fa.public, fa.protocol
		agents = append(agents, a)
	}
	p := platformtest.New(agents...)
	for _, a := range agents {
		p.SetReady(platform.KeyOf(a), ep)
	}

	dir := tb.TempDir()
	keysFile, sessFile := filepath.Join(dir, "api-keys"), filepath.Join(dir, "session-key")
	if err := os.WriteFile(keysFile, []byte(fuzzAPIKey+"\n"), 0o600); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(sessFile, []byte(strings.Repeat("f", 40)+"\n"), 0o600); err != nil {
		tb.Fatal(err)
	}
	keys, err := session.LoadKeyring(sessFile)
	if err != nil {
		tb.Fatal(err)
	}
	rig.sealed = keys.Seal("default/tools", session.Route{Addr: ep.Addr, Replica: ep.Replica, UpstreamID: fuzzUpstreamSess})

	gcfg := DefaultConfig()
	gcfg.AllowedHosts = []string{"fuzz.example"} // the rig's Host passes the DNS-rebinding check
	gcfg.SidecarToken = rig.token
	gcfg.MaxBodyBytes = fuzzMaxBody
	gcfg.ReplayBodyLimit = 128
	gcfg.ReadHeaderTimeout = 5 * time.Second
	gcfg.Auth.APIKeysFile = keysFile
	gcfg.MCP.SessionKeyFile = sessFile
	gcfg.EventLoops = *eventLoops
	gw, err := New(gcfg, p, nil, log, nil)
	if err != nil {
		tb.Fatal(err)
	}
	rig.tracing = gw.obs.tracing != nil
	srv := gw.Server()
	inner := srv.Handler
	srv.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rig.parsed.Store(rawhttp.LastSegment(r.URL.Path), &gatewayParsed{header: r.Header.Clone(), host: r.Host})
		defer func() {
			if v := recover(); v != nil {
				if v != http.ErrAbortHandler {
					rig.panicked.Note(fmt.Sprintf("%v\n%s", v, debug.Stack()))
				}
				panic(v)
			}
		}()
		inner.ServeHTTP(w, r)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	rig.addr = ln.Addr().String()
	// Served as the public port is: the relay first, recording what it
	// parsed as the wrapped handler does for the server's requests.
	serving := gw.servingServer(srv)
	if relay, ok := serving.(*h1relay.Server); ok {
		relay.Handler = relayRecorder{gw, rig}
	}
	go serving.Serve(ln)
	tb.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if serving.Shutdown(sctx) != nil {
			serving.Close()
		}
		gw.Close()
	})
	return rig
}

// relayRecorder notes the requests the relay parsed.
type relayRecorder struct {
	gw  *Gateway
	rig *gatewayHeaderRig
}

func (r relayRecorder) ServeRelay(ex *h1relay.Exchange) bool {
	id := r.note(ex)
	if r.gw.ServeRelay(ex) {
		return true
	}
	r.rig.parsed.Delete(id) // the server parses it again
	return false
}

// AdmitLoop, WriteLoopHead and FinishLoop note the requests the event
// loops parsed (-event-loops) the same way.
func (r relayRecorder) AdmitLoop(ex *h1relay.Exchange) (string, *h1relay.Upstream, bool) {
	id := r.note(ex)
	addr, u, ok := r.gw.AdmitLoop(ex)
	if !ok {
		r.rig.parsed.Delete(id) // ServeRelay or the server parses it again
	}
	return addr, u, ok
}

func (r relayRecorder) WriteLoopHead(w *bufio.Writer, ex *h1relay.Exchange) {
	r.gw.WriteLoopHead(w, ex)
}

func (r relayRecorder) FinishLoop(ex *h1relay.Exchange, res h1relay.Response, err error) bool {
	if r.gw.FinishLoop(ex, res, err) {
		return true
	}
	path, _, _ := strings.Cut(string(ex.Head.Target), "?")
	r.rig.parsed.Delete(rawhttp.LastSegment(path)) // the server parses it again
	return false
}

// note records what the relay parsed of ex, under the request's id.
func (r relayRecorder) note(ex *h1relay.Exchange) string {
	h := http.Header{}
	for _, f := range ex.Head.Fields {
		if k := http.CanonicalHeaderKey(string(f.Name)); k != "Host" {
			h[k] = append(h[k], string(f.Value))
		}
	}
	path, _, _ := strings.Cut(string(ex.Head.Target), "?")
	id := rawhttp.LastSegment(path)
	r.rig.parsed.Store(id, &gatewayParsed{header: h, host: string(ex.Head.Host)})
	return id
}

// fuzzGatewayStatuses are the answers a client may get with a healthy
// agent: the agent's 200, the gateway's own 4xx (bad route, credentials,
// unknown or expired MCP session, body too large), and the HTTP server's
// (malformed request 400, 417 for an unknown Expect, 431, 501 for a
// transfer coding it does not implement, 505).
var fuzzGatewayStatuses = map[int]bool{200: true, 400: true, 401: true, 404: true, 413: true, 417: true, 431: true, 501: true, 505: true}

func (rig *gatewayHeaderRig) check(t *testing.T, fr fuzzRequest) {
	id := rig.ids.Next()
	h := rawhttp.NewHead(fr.method, RoutePrefix+"default/"+fr.agent.name+"/"+id, "fuzz.example")
	h.Line("Connection", fr.conn)
	h.Line("Content-Length", fr.cl)
	h.Line("Transfer-Encoding", fr.te)
	h.Line("X-Forwarded-For", fr.xff)
	h.Line("Traceparent", fr.traceparent)
	h.Line("Mcp-Session-Id", fr.sess)
	h.Line("Authorization", fr.authz)
	if fr.flags&fuzzKeyHeader != 0 {
		h.Line("X-API-Key", fuzzAPIKey)
	}
	if fr.flags&fuzzKeyBearer != 0 {
		h.Line("Authorization", "Bearer "+fuzzAPIKey)
	}
	if fr.flags&fuzzGuessToken != 0 {
		h.Line(wire.HeaderGatewayToken, "a-guess-at-the-sidecar-token")
	}
	if fr.flags&fuzzSealedSession != 0 {
		h.Line("Mcp-Session-Id", rig.sealed)
	}
	if fr.flags&fuzzSessionEra != 0 {
		h.Line(mcp.HeaderProtocolVersion, "2025-11-25")
	}
	h.Raw(fr.extra)
	head := h.String()

	res, gaveUp := rawhttp.Send(t, rig.addr, fr.method, head+string(fr.body), head)
	if p := rig.panicked.Seen(); p != "" {
		t.Fatalf("panic while serving %q:\n%s", head, p)
	}
	saw := rig.agent.Take(id)
	if res == nil {
		// The HTTP server refused the request while parsing it and reset the
		// connection; Go's own parser agrees it is malformed.
		if saw != nil {
			t.Fatalf("the agent received %q, which the server refused", head)
		}
		return
	}
	// A fuzzed Origin of another site is refused 403 OriginNotAllowed
	// (hostguard.go), before anything reaches the agent.
	crossOrigin := res.StatusCode == http.StatusForbidden && strings.Contains(strings.ToLower(head), "\norigin:") &&
		strings.Contains(rawhttp.Body(res), "OriginNotAllowed")
	if !fuzzGatewayStatuses[res.StatusCode] && !(gaveUp && res.StatusCode == 499) && !crossOrigin {
		t.Fatalf("status %d %s for %q", res.StatusCode, rawhttp.Body(res), head)
	}
	var in *gatewayParsed
	if v, ok := rig.parsed.LoadAndDelete(id); ok {
		in = v.(*gatewayParsed)
	}
	rawhttp.CheckAnswer(t, "the gateway", id, res, saw, head)
	if saw == nil {
		return
	}
	if in == nil {
		t.Fatalf("the agent received a request the gateway never parsed: %q", head)
	}
	checkAgentHeaders(t, rig, fr, in, saw, head)
}

// setByProxies are headers the gateway or sidecar set themselves, so a
// client naming them in Connection does not keep them from the agent.
var setByProxies = map[string]bool{
	"X-Forwarded-For": true, "X-Forwarded-Host": true, "X-Forwarded-Proto": true, "X-Forwarded-Prefix": true,
	"Content-Length": true, "Host": true,
}

func hasToken(values []string, token string) bool {
	for _, v := range values {
		for f := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(textproto.TrimString(f), token) {
				return true
			}
		}
	}
	return false
}

func checkAgentHeaders(t *testing.T, rig *gatewayHeaderRig, fr fuzzRequest, in *gatewayParsed, saw *rawhttp.Saw, head string) {
	t.Helper()
	got := saw.Header
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("%s\nrequest: %q\nagent saw: %v", fmt.Sprintf(format, args...), head, got)
	}

	// The sidecar token never reaches the agent, by name or by value.
	if _, ok := got[wire.HeaderGatewayToken]; ok {
		fail("the agent saw %s", wire.HeaderGatewayToken)
	}
	if k := rawhttp.TokenLeak(got, rig.token); k != "" {
		fail("the agent saw the sidecar token in %s", k)
	}

	// Credentials.
	if !fr.agent.public {
		cred := in.header.Get("X-API-Key")
		if cred == "" {
			cred = bearerOf(in.header.Get("Authorization"))
		}
		if cred != fuzzAPIKey {
			fail("a private agent received a request without a valid API key")
		}
	}
	for _, v := range got["X-Api-Key"] {
		if strings.TrimSpace(v) == fuzzAPIKey {
			fail("the agent saw the gateway's API key in X-Api-Key")
		}
	}
	for _, v := range got["Authorization"] {
		if bearerOf(v) == fuzzAPIKey {
			fail("the agent saw the gateway's API key in Authorization")
		}
	}

	// Hop-by-hop headers, and whatever the client named in Connection.
	named := rawhttp.ConnectionNamed(in.header)
	upgrade := ""
	if hasToken(in.header["Connection"], "upgrade") {
		upgrade = in.header.Get("Upgrade")
	}
	if k := rawhttp.HopByHopLeak(got, upgrade); k != "" {
		fail("hop-by-hop header %s reached the agent", k)
	}
	for k := range named {
		if _, ok := got[k]; ok && !setByProxies[k] && !(upgrade != "" && (k == "Upgrade" || k == "Connection")) && !(k == "Te" && got.Get("Te") == "trailers") {
			fail("%s, named in the client's Connection header, reached the agent", k)
		}
	}

	// Forwarding headers are the proxies' alone.
	if xff := got["X-Forwarded-For"]; len(xff) != 1 || xff[0] != "127.0.0.1, 127.0.0.1" {
		fail("X-Forwarded-For %q, want exactly the client and the gateway", xff)
	}
	if v := got["X-Forwarded-Proto"]; len(v) != 1 || v[0] != "http" {
		fail("X-Forwarded-Proto %q", v)
	}
	if v := got["X-Forwarded-Host"]; len(v) != 1 || v[0] != in.host {
		fail("X-Forwarded-Host %q, want the client's Host %q", v, in.host)
	}
	if v := got["X-Forwarded-Prefix"]; len(v) != 1 || v[0] != RoutePrefix+"default/"+fr.agent.name {
		fail("X-Forwarded-Prefix %q", v)
	}
	if _, ok := got["Forwarded"]; ok {
		fail("the client's Forwarded header reached the agent")
	}
	if saw.Host != in.host {
		fail("Host %q, want the client's %q", saw.Host, in.host)
	}

	// MCP session ids reach the replica unsealed.
	if fr.agent.protocol == v1alpha1.ProtocolMCP && !mcp.Stateless(in.header.Get(mcp.HeaderProtocolVersion)) {
		for _, v := range got["Mcp-Session-Id"] {
			if v != "" && v != fuzzUpstreamSess {
				fail("the replica got Mcp-Session-Id %q, want its own id %q or none", v, fuzzUpstreamSess)
			}
		}
		if in.header.Get("Mcp-Session-Id") != "" && !named["Mcp-Session-Id"] && got.Get("Mcp-Session-Id") == "" {
			fail("a session request reached the replica without its session id")
		}
	}

	// Trace context passes through untouched when the gateway does not trace.
	if !rig.tracing && !named["Traceparent"] {
		if a, b := rawhttp.Trimmed(got["Traceparent"]), rawhttp.Trimmed(in.header["Traceparent"]); a != b {
			fail("traceparent %q, the client sent %q", a, b)
		}
	}
}

// bearerOf is the token of an "Authorization: Bearer" value, whose scheme
// name is case-insensitive, or "".
func bearerOf(v string) string {
	if len(v) < 7 || !strings.EqualFold(v[:7], "Bearer ") {
		return ""
	}
	return strings.TrimSpace(v[7:])
}
