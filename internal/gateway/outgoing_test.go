package gateway

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"reflect"
	"strings"
	"testing"

	"github.com/flint-dev/flint/internal/platform"
	"github.com/flint-dev/flint/internal/wire"
)

// referenceRewrite is the rewrite rewriteOut replaced, written with the
// standard library's helpers: rewriteOut must produce the same request.
func referenceRewrite(pr *httputil.ProxyRequest, token string) {
	c := callFrom(pr.In.Context())
	pr.Out.URL.Scheme = "http"
	pr.Out.URL.Host = c.key.Name + "." + c.key.Namespace
	pr.Out.URL.Path = c.route.Path
	pr.Out.URL.RawPath = c.route.RawPath
	pr.Out.Host = pr.In.Host
	pr.SetXForwarded()
	if token != "" {
		pr.Out.Header.Set(wire.HeaderGatewayToken, token)
	} else {
		pr.Out.Header.Del(wire.HeaderGatewayToken)
	}
	pr.Out.Header.Set("X-Forwarded-Prefix", RoutePrefix+c.key.Namespace+"/"+c.key.Name)
}

func TestRewriteOutMatchesReference(t *testing.T) {
	key := platform.AgentKey{Namespace: "team-a", Name: "echo"}
	for _, tc := range []struct {
		name, target, remote, token string
		tls                         bool
		header                      http.Header
	}{
		{name: "plain", target: "/v1/agents/team-a/echo/x?q=1", remote: "10.1.2.3:5555"},
		{name: "escaped path, token", target: "/v1/agents/team-a/echo/a%2Fb", remote: "[::1]:80", token: "s3cret"},
		{name: "client forwarding headers and token guess", target: "/v1/agents/team-a/echo/", remote: "10.0.0.9:1",
			header: http.Header{"X-Forwarded-For": {"1.1.1.1"}, "X-Forwarded-Host": {"evil"}, "Forwarded": {"for=x"},
				wire.HeaderGatewayToken: {"guess"}, "Traceparent": {"00-abc-def-01"}}},
		{name: "tls, unparsable remote address", target: "/v1/agents/team-a/echo/y", remote: "pipe", tls: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			route, err := ParseRoute(strings.SplitN(tc.target, "?", 2)[0])
			if err != nil {
				t.Fatal(err)
			}
			c := &call{key: key, st: newAgentState(key, nil), route: route}
			in := httptest.NewRequest(http.MethodGet, "http://gw.example"+tc.target, nil)
			in.RemoteAddr = tc.remote
			for k, v := range tc.header {
				in.Header[k] = v
			}
			if tc.tls {
				in.TLS = &tls.ConnectionState{}
			}
			in = in.WithContext(context.WithValue(in.Context(), callKey{}, c))
			// As ReverseProxy hands it to Rewrite: a clone without forwarding headers.
			prepare := func() *httputil.ProxyRequest {
				out := in.Clone(in.Context())
				for _, h := range []string{"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto"} {
					out.Header.Del(h)
				}
				return &httputil.ProxyRequest{In: in, Out: out}
			}
			want, got := prepare(), prepare()
			referenceRewrite(want, tc.token)
			var token []string
			if tc.token != "" {
				token = []string{tc.token}
			}
			rewriteOut(got, token)
			if *got.Out.URL != *want.Out.URL || got.Out.Host != want.Out.Host {
				t.Errorf("URL %v host %q, want %v host %q", got.Out.URL, got.Out.Host, want.Out.URL, want.Out.Host)
			}
			if !reflect.DeepEqual(got.Out.Header, want.Out.Header) {
				t.Errorf("headers\n got %v\nwant %v", got.Out.Header, want.Out.Header)
			}
		})
	}
}

func TestCopyBuffers(t *testing.T) {
	var p copyBuffers
	b := p.Get()
	if len(b) != copyBufferSize {
		t.Fatalf("buffer of %d bytes, want %d", len(b), copyBufferSize)
	}
	p.Put(b)
	p.Put(make([]byte, 10)) // not one of ours: dropped, not pooled
	if b := p.Get(); len(b) != copyBufferSize {
		t.Fatalf("buffer of %d bytes after a foreign Put, want %d", len(b), copyBufferSize)
	}
}

func TestAttemptStateCopiesAndReleases(t *testing.T) {
	req := httptest.NewRequest(http.MethodGet, "http://echo.default/x", nil)
	a := newAttempt(req, "127.0.0.1:9")
	if a.req.URL.Host != "127.0.0.1:9" || req.URL.Host != "echo.default" {
		t.Fatalf("attempt URL host %q, original %q: the original must be left alone", a.req.URL.Host, req.URL.Host)
	}
	key := platform.AgentKey{Namespace: "default", Name: "echo"}
	st := newAgentState(key, nil)
	b := &backend{}
	b.inFlight.Add(1)
	res := &http.Response{Body: io.NopCloser(strings.NewReader("ok"))}
	a.releaseWith(res, st, b)
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	res.Body.Close()
	if n := b.inFlight.Load(); n != 0 {
		t.Errorf("in flight %d after the body closed (twice), want 0", n)
	}
}
