package forward_test

import (
	"bufio"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flint-dev/flint/internal/forward"
)

// Every behaviour test runs against both transports behind the same
// httputil.ReverseProxy: net/http's, which the data plane used before, and
// forward.Transport, which replaced it. A behaviour the new one changed
// shows as one of the two subtests failing.

const headerLimit = 64 << 10

type impl struct {
	name string
	new  func() http.RoundTripper
}

func impls() []impl {
	std := func() *http.Transport {
		return &http.Transport{
			DialContext:            (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
			MaxIdleConnsPerHost:    100,
			IdleConnTimeout:        4 * time.Second,
			DisableCompression:     true,
			ExpectContinueTimeout:  time.Second,
			MaxResponseHeaderBytes: headerLimit,
		}
	}
	return []impl{
		{"net-http", func() http.RoundTripper { return std() }},
		{"forward", func() http.RoundTripper {
			s := std()
			return &forward.Transport{
				Dial:                   s.DialContext,
				Fallback:               s,
				MaxIdlePerHost:         100,
				IdleTimeout:            4 * time.Second,
				MaxResponseHeaderBytes: headerLimit,
			}
		}},
	}
}

// forEach runs f once per transport.
func forEach(t *testing.T, f func(t *testing.T, rt http.RoundTripper)) {
	for _, im := range impls() {
		t.Run(im.name, func(t *testing.T) {
			rt := im.new()
			t.Cleanup(func() { rt.(interface{ CloseIdleConnections() }).CloseIdleConnections() })
			f(t, rt)
		})
	}
}

// agent is an upstream that counts the connections it accepted.
type agent struct {
	*httptest.Server
	conns atomic.Int64
}

func newAgent(t testing.TB, h http.Handler) *agent {
	a := &agent{Server: httptest.NewUnstartedServer(h)}
	a.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			a.conns.Add(1)
		}
	}
	a.Start()
	t.Cleanup(a.Close)
	return a
}

// front is a ReverseProxy to target over rt, configured as the sidecar's:
// flush interval 0 (streams flush per write), X-Forwarded-* set, full
// duplex for request bodies.
func front(t testing.TB, rt http.RoundTripper, target string) *httptest.Server {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			pr.Out.Host = pr.In.Host
			pr.SetXForwarded()
		},
		Transport: rt,
		ErrorLog:  log.New(io.Discard, "", 0),
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength != 0 {
			_ = http.NewResponseController(w).EnableFullDuplex()
			defer func() { _, _ = io.Copy(io.Discard, r.Body); r.Body.Close() }()
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// rawConn opens a client connection to srv for hand-written requests.
func rawConn(t *testing.T, srv *httptest.Server) (net.Conn, *bufio.Reader) {
	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	return c, bufio.NewReader(c)
}

func client() *http.Client {
	return &http.Client{
		Transport: &http.Transport{DisableCompression: true, ExpectContinueTimeout: 2 * time.Second},
		Timeout:   20 * time.Second,
	}
}

func readAll(t *testing.T, res *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		t.Fatalf("reading the body: %v", err)
	}
	return string(b)
}
