package grafana_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flint-dev/flint/deploy/grafana"
	"github.com/flint-dev/flint/internal/autoscaler"
	"github.com/flint-dev/flint/internal/gateway"
	"github.com/flint-dev/flint/internal/platform"
	"github.com/flint-dev/flint/internal/platform/platformtest"
	"github.com/flint-dev/flint/internal/testutil"
)

type dashboard struct {
	Title      string  `json:"title"`
	UID        string  `json:"uid"`
	Schema     int     `json:"schemaVersion"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name       string `json:"name"`
			Definition string `json:"definition"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID      int    `json:"id"`
	Type    string `json:"type"`
	Title   string `json:"title"`
	GridPos struct {
		H, W, X, Y int
	} `json:"gridPos"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
}

func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	var d dashboard
	dec := json.NewDecoder(strings.NewReader(string(grafana.Dashboard)))
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("flint-dashboard.json is not valid JSON: %v", err)
	}
	return d
}

func TestDashboardIsWellFormed(t *testing.T) {
	d := loadDashboard(t)
	if d.Title == "" || d.UID == "" || d.Schema < 30 || len(d.Panels) == 0 {
		t.Fatalf("title %q, uid %q, schemaVersion %d, %d panels", d.Title, d.UID, d.Schema, len(d.Panels))
	}
	ids := map[int]bool{}
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d is used twice", p.ID)
		}
		ids[p.ID] = true
		if p.GridPos.W <= 0 || p.GridPos.X+p.GridPos.W > 24 || p.GridPos.H <= 0 {
			t.Errorf("panel %q has gridPos %+v outside the 24-column grid", p.Title, p.GridPos)
		}
		if p.Type != "row" && len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			if strings.Count(tg.Expr, "(") != strings.Count(tg.Expr, ")") || strings.Count(tg.Expr, "{") != strings.Count(tg.Expr, "}") {
				t.Errorf("panel %q: unbalanced query %s", p.Title, tg.Expr)
			}
		}
	}
}

var metricName = regexp.MustCompile(`\bflint_[a-z0-9_]+`)

// TestDashboardUsesOnlyRealMetrics runs a gateway, a sidecar and an
// autoscaler tick, gathers what their real registries export, and checks
// that every flint_* series the dashboard queries exists, with _bucket,
// _sum and _count only on histograms.
func TestDashboardUsesOnlyRealMetrics(t *testing.T) {
	exported := exportedFamilies(t)
	d := loadDashboard(t)
	var queries []string
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			queries = append(queries, tg.Expr)
		}
	}
	for _, v := range d.Templating.List {
		queries = append(queries, v.Definition)
	}
	used := map[string]bool{}
	for _, q := range queries {
		for _, name := range metricName.FindAllString(q, -1) {
			used[name] = true
			if _, ok := exported[name]; ok {
				continue
			}
			base, suffix := splitHistogramSuffix(name)
			if typ, ok := exported[base]; ok && suffix != "" && typ == dto.MetricType_HISTOGRAM {
				used[base] = true
				continue
			}
			t.Errorf("the dashboard queries %s, which Flint does not export (query: %s)", name, q)
		}
	}
	var unused []string
	for name := range exported {
		if !used[name] {
			unused = append(unused, name)
		}
	}
	sort.Strings(unused)
	t.Logf("exported but not on the dashboard: %v", unused)
}

func splitHistogramSuffix(name string) (base, suffix string) {
	for _, s := range []string{"_bucket", "_sum", "_count"} {
		if b, ok := strings.CutSuffix(name, s); ok {
			return b, s
		}
	}
	return name, ""
}

// exportedFamilies returns every flint_* family the gateway, the sidecar
// and the autoscaler export, with its type, after enough traffic for every
// labelled series to exist.
func exportedFamilies(t *testing.T) map[string]dto.MetricType {
	agent := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer agent.Close()
	ep := platformtest.StartSidecar(t, agent.Listener.Addr().String(), 1, "echo-0")
	echo := platformtest.Agent("default", "echo", 1)
	cold := platformtest.Agent("default", "cold", 1)
	cold.Spec.Timeouts.ColdStart = &metav1.Duration{Duration: 50 * time.Millisecond}
	p := platformtest.New(echo, cold)
	echoKey := platform.AgentKey{Namespace: "default", Name: "echo"}
	p.SetReady(echoKey, ep)

	reg := &describingRegistry{Registry: prometheus.NewRegistry(), names: map[string]bool{}}
	gw, err := gateway.New(gateway.DefaultConfig(), p, nil, slog.New(slog.DiscardHandler), reg)
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Close()
	loop, err := autoscaler.NewLoop(autoscaler.LoopConfig{}, p, gw, slog.New(slog.DiscardHandler), reg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gw.Handler())
	defer srv.Close()

	for _, path := range []string{"/v1/agents/default/echo/", "/v1/agents/default/cold/"} {
		res, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
	}
	// One autoscaler tick: Run ticks at once.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = loop.Run(ctx) }()
	testutil.WaitFor(t, "the autoscaler's first decision", func() bool { return len(loop.Decisions(echoKey)) > 0 })
	cancel()
	<-done

	out := map[string]dto.MetricType{}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		out[mf.GetName()] = mf.GetType()
	}
	res, err := http.Get("http://" + ep.AdminAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	sidecar, err := parser.TextToMetricFamilies(res.Body)
	if err != nil {
		t.Fatalf("sidecar /metrics: %v", err)
	}
	for name, mf := range sidecar {
		out[name] = mf.GetType()
	}
	// Labelled counters only appear once something happened (a retry, a
	// scrape error); their registered descriptors name them regardless.
	for name := range reg.names {
		if _, ok := out[name]; !ok {
			out[name] = dto.MetricType_UNTYPED
		}
	}
	for name := range out {
		if !strings.HasPrefix(name, "flint_") {
			delete(out, name)
		}
	}
	for _, want := range []string{"flint_gateway_requests_total", "flint_gateway_rejected_total", "flint_sidecar_requests_total", "flint_autoscaler_desired_replicas"} {
		if _, ok := out[want]; !ok {
			t.Fatalf("%s was not exported; the traffic above should have produced it (got %v)", want, fmt.Sprint(out))
		}
	}
	return out
}

// describingRegistry records the name of every metric registered on it.
type describingRegistry struct {
	*prometheus.Registry
	names map[string]bool
}

var fqName = regexp.MustCompile(`fqName: "([^"]+)"`)

func (r *describingRegistry) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc, 16)
	go func() { c.Describe(ch); close(ch) }()
	for d := range ch {
		if m := fqName.FindStringSubmatch(d.String()); m != nil {
			r.names[m[1]] = true
		}
	}
	return r.Registry.Register(c)
}

func (r *describingRegistry) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}
