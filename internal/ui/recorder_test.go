package ui

import (
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeSource returns whatever the test last set.
type fakeSource struct {
	mu      sync.Mutex
	samples []AgentSample
}

func (f *fakeSource) set(s ...AgentSample) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.samples = s
}

func (f *fakeSource) get() []AgentSample {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]AgentSample(nil), f.samples...)
}

func hist(count uint64, cumulative ...uint64) Histogram {
	bounds := []float64{0.01, 0.1, 1}
	h := Histogram{Count: count}
	for i, c := range cumulative {
		h.Buckets = append(h.Buckets, Bucket{UpperBound: bounds[i], Count: c})
	}
	return h
}

func TestQuantileInterpolatesWithinTheInterval(t *testing.T) {
	prev := hist(100, 100, 100, 100) // all old observations below 10ms
	// 10 new observations: 5 in (0.01, 0.1], 5 in (0.1, 1].
	cur := hist(110, 100, 105, 110)
	p50 := quantile(0.5, prev, cur)
	if p50 == nil || math.Abs(*p50-0.1) > 1e-9 {
		t.Fatalf("p50 = %v, want 0.1", p50)
	}
	p99 := quantile(0.99, prev, cur)
	if p99 == nil || math.Abs(*p99-(0.1+0.9*(9.9-5)/5)) > 1e-9 {
		t.Fatalf("p99 = %v", *p99)
	}
	if q := quantile(0.5, cur, cur); q != nil {
		t.Fatalf("no new observations must give nil, got %v", *q)
	}
	// Observations above the last bound report the last bound.
	over := quantile(0.99, hist(0, 0, 0, 0), hist(10, 0, 0, 1))
	if over == nil || *over != 1 {
		t.Fatalf("p99 above the buckets = %v, want 1", over)
	}
}

func TestRecorderRatesAndHistory(t *testing.T) {
	src := &fakeSource{}
	r := NewRecorder(src.get, time.Second, 3)
	now := time.Unix(1000, 0)
	r.now = func() time.Time { return now }

	src.set(AgentSample{Namespace: "default", Name: "echo", Replicas: 1, Ready: 0, Held: 2, RequestsTotal: 10, ColdStartsTotal: 1})
	r.Sample()
	now = now.Add(2 * time.Second)
	src.set(AgentSample{Namespace: "default", Name: "echo", Replicas: 1, Ready: 1, RequestsTotal: 30, ErrorsTotal: 4, ColdStartsTotal: 3,
		Latency: hist(20, 0, 20, 20)})
	r.Sample()

	st := r.State(0)
	if st.Seq != 2 || len(st.Agents) != 1 {
		t.Fatalf("state: %+v", st)
	}
	a := st.Agents[0]
	if a.Phase != "ready" || len(a.Points) != 2 {
		t.Fatalf("agent: %+v", a)
	}
	p := a.Points[1]
	if p.RequestRate != 10 || p.ErrorRate != 2 || p.ColdStarts != 2 || p.P50 == nil {
		t.Fatalf("point: %+v", p)
	}
	if a.Points[0].Held != 2 || a.Points[0].RequestRate != 0 {
		t.Fatalf("first point: %+v", a.Points[0])
	}
	// Only newer points are sent again; the ring keeps the last 3.
	for range 3 {
		now = now.Add(time.Second)
		r.Sample()
	}
	st = r.State(4)
	if len(st.Agents[0].Points) != 1 || st.Agents[0].Points[0].Seq != 5 {
		t.Fatalf("since 4: %+v", st.Agents[0].Points)
	}
	if all := r.State(0).Agents[0].Points; len(all) != 3 || all[0].Seq != 3 {
		t.Fatalf("ring: %+v", all)
	}
	// A sequence from before a restart gets everything.
	if got := r.State(99).Agents[0].Points; len(got) != 3 {
		t.Fatalf("since > seq: %d points", len(got))
	}
	// A poll right after a sample adds no near-duplicate point.
	now = now.Add(100 * time.Millisecond)
	r.sampleIfStale()
	if st := r.State(0); st.Seq != 5 {
		t.Fatalf("a poll 100ms after a sample recorded another (seq %d)", st.Seq)
	}
	// Agents that go away are forgotten.
	now = now.Add(time.Second)
	src.set()
	r.Sample()
	if n := len(r.State(0).Agents); n != 0 {
		t.Fatalf("%d agents after removal", n)
	}
}

func TestPhase(t *testing.T) {
	for want, s := range map[string]AgentSample{
		"scaled to zero": {},
		"starting":       {Held: 1},
		"scaling up":     {Replicas: 3, Ready: 1},
		"scaling down":   {Replicas: 1, Ready: 2},
		"ready":          {Replicas: 2, Ready: 2},
		"panic":          {Replicas: 2, Ready: 2, Panic: true},
		"failing":        {Replicas: 1, Failure: "CrashLoopBackOff: exit status 1"},
	} {
		if got := Phase(&s); got != want {
			t.Errorf("Phase(%+v) = %q, want %q", s, got, want)
		}
	}
}

func TestHandlerServesPageAndState(t *testing.T) {
	src := &fakeSource{}
	src.set(AgentSample{Namespace: "default", Name: "echo", Protocol: "http"})
	srv := httptest.NewServer(NewRecorder(src.get, 0, 0).Handler())
	defer srv.Close()

	res := mustGet(t, srv.URL+"/ui/")
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(body), `<script src="app.js"`) {
		t.Fatalf("page: %d %s", res.StatusCode, body)
	}
	if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
		t.Fatalf("page CSP = %q", csp)
	}
	for _, asset := range []string{"app.js", "style.css"} {
		res := mustGet(t, srv.URL+"/ui/"+asset)
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("%s: %d", asset, res.StatusCode)
		}
	}

	// The page polls without any Run: the request itself samples.
	res = mustGet(t, srv.URL+StatePath+"?since=0")
	var st State
	if err := json.NewDecoder(res.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if len(st.Agents) != 1 || st.Agents[0].Name != "echo" || st.Agents[0].Phase != "scaled to zero" || len(st.Agents[0].Points) != 1 {
		t.Fatalf("state: %+v", st)
	}
	if res := mustGet(t, srv.URL+StatePath+"?since=x"); res.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad since: %d", res.StatusCode)
	}

	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := noRedirect.Get(srv.URL + "/ui")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusMovedPermanently || res.Header.Get("Location") != "/ui/" {
		t.Fatalf("/ui: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
}

func mustGet(t *testing.T, url string) *http.Response {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	return res
}
