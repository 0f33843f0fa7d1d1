package proxy

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"testing"
	"time"
)

var benchBody = []byte(`{"ok":true,"message":"hello from the agent"}`)

func benchAgent(b *testing.B) *httptest.Server {
	return upstream(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(benchBody)
	}))
}

// runClients drives url from parallel keep-alive clients. Allocations
// reported cover the whole process: client, sidecar and agent.
func runClients(b *testing.B, target string) {
	tr := &http.Transport{MaxIdleConnsPerHost: 256, DisableCompression: true}
	b.Cleanup(tr.CloseIdleConnections)
	c := &http.Client{Transport: tr}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := c.Get(target)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
}

// BenchmarkProxy is the full path: client → sidecar (breaker, stats,
// metrics, ReverseProxy) → agent, over loopback.
func BenchmarkProxy(b *testing.B) {
	for _, bc := range []struct {
		name        string
		concurrency int
	}{{"unlimited", 0}, {"cap1000", 1000}} {
		b.Run(bc.name, func(b *testing.B) {
			cfg := testConfig(hostOf(benchAgent(b)))
			cfg.Concurrency = bc.concurrency
			s := startSidecar(b, cfg, true)
			runClients(b, "http://"+s.ServingAddr()+"/invoke")
		})
	}
}

// BenchmarkDirect is the baseline without a proxy.
func BenchmarkDirect(b *testing.B) {
	runClients(b, benchAgent(b).URL+"/invoke")
}

// BenchmarkPlainReverseProxy is the baseline proxy the design compares
// against: httputil.ReverseProxy with default settings.
func BenchmarkPlainReverseProxy(b *testing.B) {
	u, _ := url.Parse(benchAgent(b).URL)
	rp := httputil.NewSingleHostReverseProxy(u)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	b.Cleanup(tr.CloseIdleConnections)
	rp.Transport = tr
	front := upstream(b, rp)
	runClients(b, front.URL+"/invoke")
}

// cannedTransport answers at once, as the agent would, so
// BenchmarkSidecarHandler counts the sidecar's own work only.
type cannedTransport struct{}

func (cannedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	return &http.Response{
		StatusCode:    http.StatusOK,
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        http.Header{"Content-Type": {"application/json"}},
		ContentLength: int64(len(benchBody)),
		Body:          io.NopCloser(bytes.NewReader(benchBody)),
		Request:       r,
	}, nil
}

// discardWriter is a ResponseWriter that keeps nothing but its header map.
type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) WriteHeader(code int)        { w.code = code }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }

// BenchmarkSidecarHandler is the sidecar's serving handler alone, in
// process: admission, stats, metrics and ReverseProxy, with the agent's
// answer canned. The harness allocates the request copy and the response.
// "timeout300s" runs as deployed: the controller and the local runtime
// always pass the agent's request timeout (300s by default).
func BenchmarkSidecarHandler(b *testing.B) {
	for _, bc := range []struct {
		name        string
		concurrency int
		timeout     time.Duration
	}{{"unlimited", 0, 0}, {"cap1000", 1000, 0}, {"timeout300s", 0, 300 * time.Second}} {
		b.Run(bc.name, func(b *testing.B) {
			cfg := testConfig(hostOf(benchAgent(b)))
			cfg.Concurrency = bc.concurrency
			cfg.RequestTimeout = bc.timeout
			s := startSidecar(b, cfg, true)
			s.proxy.Transport = cannedTransport{}
			in := httptest.NewRequest(http.MethodGet, "http://agent.default/bench?x=1", nil)
			in.RemoteAddr = "127.0.0.1:40000"
			in.Header.Set("User-Agent", "bench")
			in.Header.Set("X-Forwarded-For", "10.0.0.1")
			in.Header.Set("X-Forwarded-Host", "gw.example")
			in.Header.Set("X-Forwarded-Proto", "http")
			w := &discardWriter{h: http.Header{}}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				r := *in
				r.Header = in.Header.Clone()
				clear(w.h)
				w.code = 0
				s.ServeHTTP(w, &r)
				if w.code != http.StatusOK {
					b.Fatalf("status %d", w.code)
				}
			}
		})
	}
}
