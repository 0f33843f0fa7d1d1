package gateway

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flint-dev/flint/internal/platform"
	"github.com/flint-dev/flint/internal/platform/platformtest"
)

// The benchmarks here measure the gateway's hot path: an HTTP agent with
// ready replicas, a GET answered at once. Profile them with
//
//	go test -run '^$' -bench Chain -cpuprofile cpu.out -memprofile mem.out ./internal/gateway/
//
// (docs/benchmarks.md, "Profiling the hot path").

var benchReply = []byte(`{"ok":true,"message":"hello from the agent"}`)

func benchAgentServer(b *testing.B) *httptest.Server {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(benchReply)
	}))
	b.Cleanup(up.Close)
	return up
}

func benchGateway(b *testing.B, p platform.Platform) *Gateway {
	gw, err := New(DefaultConfig(), p, nil, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(gw.Close)
	return gw
}

// runBenchClients drives url from parallel keep-alive clients. Allocations
// reported cover the whole process: client, gateway, sidecar and agent.
func runBenchClients(b *testing.B, url string) {
	tr := &http.Transport{MaxIdleConnsPerHost: 256, DisableCompression: true}
	b.Cleanup(tr.CloseIdleConnections)
	c := &http.Client{Transport: tr}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			res, err := c.Get(url)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusOK {
				b.Errorf("status %d", res.StatusCode)
				return
			}
		}
	})
}

// BenchmarkChain is the whole data plane over loopback: client → gateway
// (route, balancer, ReverseProxy) → sidecar (breaker, stats, ReverseProxy)
// → agent, with one or two replicas.
func BenchmarkChain(b *testing.B) {
	for _, bc := range []struct {
		name     string
		replicas int
	}{{"1replica", 1}, {"2replicas", 2}} {
		b.Run(bc.name, func(b *testing.B) {
			up := benchAgentServer(b)
			p := platformtest.New(platformtest.Agent(echoKey.Namespace, echoKey.Name, 0))
			var eps []platform.Endpoint
			for i := range bc.replicas {
				eps = append(eps, platformtest.StartSidecar(b, up.Listener.Addr().String(), 0, "echo-"+string(rune('a'+i))))
			}
			p.SetReady(echoKey, eps...)
			gw := benchGateway(b, p)
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			serving := gw.ServingServer() // the relay, as flint gateway serves
			go func() { _ = serving.Serve(ln) }()
			b.Cleanup(func() { _ = serving.Close() })
			runBenchClients(b, "http://"+ln.Addr().String()+"/v1/agents/default/echo/bench?x=1")
		})
	}
}

// cannedTransport answers every attempt at once, as a sidecar would, so
// BenchmarkGatewayHandler counts the gateway's own work only.
type cannedTransport struct{}

func (cannedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	return &http.Response{
		StatusCode:    http.StatusOK,
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        http.Header{"Content-Type": {"application/json"}},
		ContentLength: int64(len(benchReply)),
		Body:          io.NopCloser(strings.NewReader(string(benchReply))),
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

// BenchmarkGatewayHandler is the gateway's handler alone, in process: no
// sockets, no server, the replica's answer canned. Its allocations are the
// gateway's plus ReverseProxy's, and the few of the harness (the request
// and the canned response).
func BenchmarkGatewayHandler(b *testing.B) {
	p := platformtest.New(platformtest.Agent(echoKey.Namespace, echoKey.Name, 0))
	p.SetReady(echoKey,
		platform.Endpoint{Addr: "127.0.0.1:1", Replica: "echo-a"},
		platform.Endpoint{Addr: "127.0.0.1:2", Replica: "echo-b"})
	gw := benchGateway(b, p)
	gw.proxy.Transport = &balancingTransport{g: gw, base: cannedTransport{}}
	in := httptest.NewRequest(http.MethodGet, "http://gw.example/v1/agents/default/echo/bench?x=1", nil)
	in.Header.Set("User-Agent", "bench")
	in.Header.Set("Accept", "*/*")
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		r := *in
		r.Header = in.Header.Clone()
		clear(w.h)
		w.code = 0
		gw.ServeHTTP(w, &r)
		if w.code != http.StatusOK {
			b.Fatalf("status %d", w.code)
		}
	}
}
