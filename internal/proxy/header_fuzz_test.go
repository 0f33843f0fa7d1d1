package proxy

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/flint-dev/flint/internal/telemetry"
	"github.com/flint-dev/flint/internal/testutil"
	"github.com/flint-dev/flint/internal/testutil/rawhttp"
	"github.com/flint-dev/flint/internal/wire"
)

// FuzzSidecarHeaders sends raw HTTP/1.1 requests with fuzzed headers —
// arbitrary extra lines, Connection lists, Content-Length and
// Transfer-Encoding, X-Forwarded-*, traceparent, Mcp-Session-Id,
// Authorization and the gateway token (right, wrong, repeated, named in
// Connection) — to a real sidecar's serving port in front of an agent that
// records what it receives, and checks:
//
//   - nothing panics;
//   - the answer is a well-formed response with a status the sidecar, its
//     HTTP server or the agent may give;
//   - the agent sees only requests that carry the gateway token, and never
//     the token itself;
//   - a request with the token and a well-formed body always reaches the
//     agent (the check does not just refuse everything);
//   - a request the sidecar answered itself never reached the agent whole;
//   - the agent never sees hop-by-hop headers nor any header the caller
//     named in Connection;
//   - X-Forwarded-For is one line ending in the real peer, after what the
//     caller (the gateway) sent; X-Forwarded-Proto defaults to http;
//   - end-to-end headers (traceparent, Authorization, Mcp-Session-Id) pass
//     unchanged.
func FuzzSidecarHeaders(f *testing.F) {
	rig := newSidecarHeaderRig(f)
	type seed struct {
		method, extra, conn, cl, te, xff, xfp, traceparent, sess, authz string
		flags                                                           uint8
		body                                                            string
	}
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	for _, s := range []seed{
		{method: "GET", flags: scToken},
		{method: "GET"},
		{method: "GET", flags: scWrongToken},
		{method: "GET", flags: scWrongToken | scToken},  // the wrong one first
		{method: "GET", flags: scToken | scWrongToken2}, // the right one first
		{method: "GET", flags: scToken, conn: wire.HeaderGatewayToken},
		{method: "GET", flags: scToken, extra: "flint-gateway-token: lower-case-guess"},
		{method: "GET", flags: scToken, extra: "Flint_Gateway_Token: underscore-guess"},
		// What the gateway sends.
		{method: "POST", flags: scToken, xff: "203.0.113.9", xfp: "https", extra: "X-Forwarded-Host: api.example\r\nX-Forwarded-Prefix: /v1/agents/ns/a", cl: "5", body: "hello"},
		{method: "GET", flags: scToken, traceparent: tp, extra: "Tracestate: congo=t61rcWkgMzE", sess: "replica-session-1", authz: "Bearer agent-token"},
		// Hop-by-hop headers and Connection lists.
		{method: "GET", flags: scToken, conn: "X-Forwarded-For, X-Secret, Keep-Alive", extra: "X-Secret: s\r\nKeep-Alive: timeout=5", xff: "6.6.6.6"},
		{method: "GET", flags: scToken, conn: "X-Forwarded-Host, X-Forwarded-Proto, Forwarded", xfp: "https", extra: "X-Forwarded-Host: evil\r\nForwarded: for=1.1.1.1"},
		{method: "GET", flags: scToken, conn: "Upgrade", extra: "Upgrade: websocket"},
		{method: "GET", flags: scToken, extra: "Proxy-Connection: keep-alive\r\nProxy-Authorization: Basic eDp5\r\nTe: trailers, deflate\r\nTrailer: X-T"},
		{method: "GET", flags: scToken, conn: "Traceparent, Authorization, Mcp-Session-Id", traceparent: tp, authz: "Bearer x", sess: "s"},
		// X-Forwarded-For shapes.
		{method: "GET", flags: scToken, xff: "1.2.3.4, 5.6.7.8", extra: "X-Forwarded-For: 9.9.9.9"},
		{method: "GET", flags: scToken, extra: "X-Forwarded-For:"},
		{method: "GET", flags: scToken, xff: ",,,"},
		// Framing.
		{method: "POST", flags: scToken, cl: "50", te: "chunked", body: "0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"},
		{method: "POST", flags: scToken, cl: "3", extra: "Content-Length: 4", body: "abcd"},
		{method: "POST", flags: scToken, te: "gzip, chunked", body: "0\r\n\r\n"},
		{method: "POST", flags: scToken, te: "chunked", body: "5\r\nhello\r\n0\r\n\r\n"},
		{method: "POST", flags: scToken, te: "chunked", body: "zz\r\nhello\r\n0\r\n\r\n"},
		{method: "POST", flags: scToken, te: "chunked", body: "5\r\nhel"},
		{method: "POST", flags: scToken, cl: "10", body: "short"},
		{method: "POST", flags: scToken, extra: "Expect: 100-continue", cl: "2", body: "hi"},
		{method: "HEAD", flags: scToken},
		{method: "OPTIONS", flags: scToken, extra: "X-A: b\r\nX-Forwarded-For: 1.1.1.1\r\n folded"},
		{method: "GET", flags: scToken, extra: "Bad Name: x"},
		// Found by CI's fuzzing pass: an upgrade to a non-printable protocol
		// was answered 502, as if the agent had failed.
		{method: "0", flags: scToken, conn: "UpgrAde", authz: "0", extra: "UpgrAde:\x94"},
	} {
		f.Add(s.method, s.extra, s.conn, s.cl, s.te, s.xff, s.xfp, s.traceparent, s.sess, s.authz, s.flags, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, method, extra, conn, cl, te, xff, xfp, traceparent, sess, authz string, flags uint8, body []byte) {
		if method == "" {
			method = http.MethodGet
		}
		if strings.ContainsAny(method, " \t\r\n") || len(method+extra+conn+cl+te+xff+xfp+traceparent+sess+authz)+len(body) > 2048 {
			return
		}
		rig.check(t, scRequest{method: method, extra: extra, conn: conn, cl: cl, te: te, xff: xff, xfp: xfp,
			traceparent: traceparent, sess: sess, authz: authz, flags: flags, body: body})
	})
}

// Flags of a fuzzed request: token lines the fuzzer cannot guess.
const (
	scToken       = 1 << iota // Flint-Gateway-Token: the right token
	scWrongToken              // a wrong token, before the right one
	scWrongToken2             // a wrong token, after the right one
)

type scRequest struct {
	method, extra, conn, cl, te, xff, xfp, traceparent, sess, authz string
	flags                                                           uint8
	body                                                            []byte
}

type sidecarHeaderRig struct {
	addr     string
	token    string
	tracing  bool
	ids      *rawhttp.IDs
	agent    rawhttp.Agent
	panicked rawhttp.PanicLog
}

func newSidecarHeaderRig(tb testing.TB) *sidecarHeaderRig {
	tb.Helper()
	rig := &sidecarHeaderRig{token: rawhttp.RandomHex(tb, 16), ids: rawhttp.NewIDs(tb)}
	log := slog.New(slog.NewTextHandler(&rig.panicked, &slog.HandlerOptions{Level: slog.LevelDebug}))

	agent := upstream(tb, &rig.agent)
	cfg := testConfig(hostOf(agent))
	cfg.GatewayToken = rig.token
	cfg.Concurrency, cfg.QueueDepth = 8, 4
	cfg.DrainTimeout = time.Second
	s, err := New(cfg, log)
	if err != nil {
		tb.Fatal(err)
	}
	if err := s.Listen(); err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	tb.Cleanup(func() { cancel(); <-done })
	testutil.WaitFor(tb, "sidecar ready", s.Ready)
	rig.addr = s.ServingAddr()
	rig.tracing = telemetry.Current() != nil
	return rig
}

// scStatuses are the answers a caller may get: the agent's 200, the
// sidecar's 403 (no or wrong token), and the HTTP server's (400 malformed,
// 417 unknown Expect, 431, 501 unknown transfer coding, 505).
var scStatuses = map[int]bool{200: true, 400: true, 403: true, 417: true, 431: true, 501: true, 505: true}

func (rig *sidecarHeaderRig) check(t *testing.T, sr scRequest) {
	id := rig.ids.Next()
	h := rawhttp.NewHead(sr.method, "/fuzz/"+id, "agent.example")
	if sr.flags&scWrongToken != 0 {
		h.Line(wire.HeaderGatewayToken, "wrong-token-0123456789abcdef")
	}
	if sr.flags&scToken != 0 {
		h.Line(wire.HeaderGatewayToken, rig.token)
	}
	if sr.flags&scWrongToken2 != 0 {
		h.Line(wire.HeaderGatewayToken, "wrong-token-fedcba9876543210")
	}
	h.Line("Connection", sr.conn)
	h.Line("Content-Length", sr.cl)
	h.Line("Transfer-Encoding", sr.te)
	h.Line("X-Forwarded-For", sr.xff)
	h.Line("X-Forwarded-Proto", sr.xfp)
	h.Line("Traceparent", sr.traceparent)
	h.Line("Mcp-Session-Id", sr.sess)
	h.Line("Authorization", sr.authz)
	h.Raw(sr.extra)
	head := h.String()
	// The token never appears in failure messages.
	shown := strings.ReplaceAll(head, rig.token, "<token>")

	in, _ := rawhttp.Parse(head + string(sr.body))
	res, gaveUp := rawhttp.Send(t, rig.addr, sr.method, head+string(sr.body), shown)
	if p := rig.panicked.Seen(); p != "" {
		t.Fatalf("panic while serving %q:\n%s", shown, p)
	}
	saw := rig.agent.Take(id)
	if res == nil {
		if saw != nil {
			t.Fatalf("the agent received %q, which the server refused", shown)
		}
		return
	}
	// A caller that gives up mid-body is gone to Go's server: 499. A body
	// whose chunked framing is malformed is only found out while it is
	// streamed to the agent: 502 (through the gateway this cannot happen:
	// it answers 400 and re-frames what it sends).
	if !scStatuses[res.StatusCode] && !(gaveUp && (res.StatusCode == 499 || res.StatusCode == 502)) {
		t.Fatalf("status %d %s for %q", res.StatusCode, rawhttp.Body(res), shown)
	}
	fromAgent := rawhttp.CheckAnswer(t, "the sidecar", id, res, saw, shown)
	hasToken := in != nil && in.Header.Get(wire.HeaderGatewayToken) == rig.token
	if in != nil && hasToken && !gaveUp && !fromAgent && res.StatusCode != 417 && res.StatusCode != 501 && res.StatusCode != 400 {
		t.Fatalf("a well-formed request with the token got %d %s, not the agent: %q", res.StatusCode, rawhttp.Body(res), shown)
	}
	if res.StatusCode == http.StatusForbidden && hasToken {
		t.Fatalf("403 for a request with the right token first: %q", shown)
	}
	if saw == nil {
		return
	}
	if in == nil {
		t.Fatalf("the agent received %q, which Go's parser refuses", shown)
	}
	if !hasToken {
		t.Fatalf("the agent received a request without the gateway token: %q", shown)
	}
	rig.checkAgentHeaders(t, in.Header, saw.Header, shown)
}

func (rig *sidecarHeaderRig) checkAgentHeaders(t *testing.T, in, got http.Header, shown string) {
	t.Helper()
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("%s\nrequest: %q\nagent saw: %v", fmt.Sprintf(format, args...), shown, got)
	}
	if _, ok := got[wire.HeaderGatewayToken]; ok {
		fail("the agent saw %s", wire.HeaderGatewayToken)
	}
	if k := rawhttp.TokenLeak(got, rig.token); k != "" {
		fail("the agent saw the gateway token in %s", k)
	}

	named := rawhttp.ConnectionNamed(in)
	upgrade := ""
	if named["Upgrade"] {
		upgrade = in.Get("Upgrade")
	}
	if k := rawhttp.HopByHopLeak(got, upgrade); k != "" {
		fail("hop-by-hop header %s reached the agent", k)
	}
	for k := range named {
		if _, ok := got[k]; !ok {
			continue
		}
		switch {
		case k == "X-Forwarded-For" || k == "X-Forwarded-Proto" || k == "Content-Length" || k == "Host":
			// This hop sets them itself.
		case upgrade != "" && (k == "Upgrade" || k == "Connection"):
		case k == "Te" && got.Get("Te") == "trailers":
		default:
			fail("%s, named in Connection, reached the agent", k)
		}
	}

	// X-Forwarded-For: what the caller sent (unless it named the header in
	// Connection), then this hop's peer; one line.
	var prior []string
	if !named["X-Forwarded-For"] {
		for _, v := range in["X-Forwarded-For"] {
			if strings.TrimSpace(v) != "" {
				prior = append(prior, v)
			}
		}
	}
	want := strings.Join(append(prior, "127.0.0.1"), ", ")
	if xff := got["X-Forwarded-For"]; len(xff) != 1 || xff[0] != want {
		fail("X-Forwarded-For %q, want %q", xff, want)
	}
	wantProto := []string{"http"}
	if v, ok := in["X-Forwarded-Proto"]; ok && !named["X-Forwarded-Proto"] {
		wantProto = v
	}
	if v := got["X-Forwarded-Proto"]; rawhttp.Trimmed(v) != rawhttp.Trimmed(wantProto) {
		fail("X-Forwarded-Proto %q, want %q", v, wantProto)
	}

	// End-to-end headers pass unchanged.
	for _, k := range []string{"Authorization", "Mcp-Session-Id", "Tracestate", "X-Forwarded-Host", "X-Forwarded-Prefix", "Forwarded", "Traceparent"} {
		if k == "Traceparent" && rig.tracing {
			continue
		}
		want := in[k]
		if named[k] {
			want = nil
		}
		if rawhttp.Trimmed(got[k]) != rawhttp.Trimmed(want) {
			fail("%s %q, the caller sent %q", k, got[k], want)
		}
	}
}
