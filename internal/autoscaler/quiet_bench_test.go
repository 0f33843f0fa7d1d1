package autoscaler

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/flint-dev/flint/internal/platform"
	"github.com/flint-dev/flint/internal/platform/platformtest"
	"github.com/flint-dev/flint/internal/wire"
)

// BenchmarkQuietAgentTick is the autoscaler's cost per agent per tick for
// agents nobody calls, each with 5 idle replicas on real sidecar stats
// endpoints (one loopback server): scraping every tick, as before quiet
// agents, against the default idle scrape interval. 2,000 such agents cost
// 1,000 x this per second of the manager's CPU.
func BenchmarkQuietAgentTick(b *testing.B) {
	start := time.Now()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(wire.Stats{UptimeSeconds: time.Since(start).Seconds(), Ready: true, Concurrency: 10})
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	for _, tc := range []struct {
		name string
		idle time.Duration
	}{{"every-tick", DefaultTick}, {"quiet", DefaultIdleScrapeInterval}, {"never-forced", time.Hour}} {
		b.Run(tc.name, func(b *testing.B) {
			const agents = 50
			p := newQuietPlatform()
			gw := &platformtest.GatewayDemand{}
			for i := range agents {
				a := testAgent(fmt.Sprintf("a%d", i), 10, 5, 10)
				p.SetAgent(a)
				var eps []platform.Endpoint
				for r := range 5 {
					eps = append(eps, platform.Endpoint{Addr: addr, AdminAddr: addr, Replica: fmt.Sprintf("a%d-%d", i, r)})
				}
				p.SetReady(platform.KeyOf(a), eps...)
			}
			l, err := NewLoop(LoopConfig{IdleScrapeInterval: tc.idle}, p, gw, slog.New(slog.DiscardHandler), nil)
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			var states []*agentState
			for _, a := range p.Agents() {
				states = append(states, l.state(platform.KeyOf(a), SpecOf(a)))
			}
			scan := int64(0)
			b.ResetTimer()
			for b.Loop() {
				scan++
				for _, st := range states {
					st.scan = scan
					l.tickAgent(ctx, st, st.spec)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*agents), "ns/agent-tick")
		})
	}
}
