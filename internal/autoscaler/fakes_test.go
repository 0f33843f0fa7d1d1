package autoscaler

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flint-dev/flint/api/v1alpha1"
	"github.com/flint-dev/flint/internal/platform"
	"github.com/flint-dev/flint/internal/wire"
)

// fakeSidecar serves a replica's Stats on a real loopback listener. Its
// clock advances one tick per scrape, so averages between two scrapes equal
// the in-flight count set by the test.
type fakeSidecar struct {
	srv *httptest.Server

	mu       sync.Mutex
	inFlight int64
	status   int           // non-200 answers with this status
	hang     chan struct{} // non-nil: requests block until it is closed
	snap     wire.Stats
}

func newFakeSidecar(t *testing.T, inFlight int64) *fakeSidecar {
	t.Helper()
	s := &fakeSidecar{inFlight: inFlight, status: http.StatusOK}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *fakeSidecar) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != wire.PathStats {
		http.NotFound(w, r)
		return
	}
	s.mu.Lock()
	hang, status := s.hang, s.status
	s.mu.Unlock()
	if hang != nil {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
		return
	}
	if status != http.StatusOK {
		http.Error(w, "broken", status)
		return
	}
	s.mu.Lock()
	const dt = 2 // seconds per scrape, one tick
	s.snap.UptimeSeconds += dt
	s.snap.InFlight = s.inFlight
	s.snap.InFlightSeconds += float64(s.inFlight) * dt
	s.snap.RequestsTotal += uint64(s.inFlight) * dt // requests take 1s
	s.snap.Ready = true
	snap := s.snap
	s.mu.Unlock()
	_ = json.NewEncoder(w).Encode(snap)
}

func (s *fakeSidecar) set(inFlight int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inFlight = inFlight
}

func (s *fakeSidecar) fail(status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status = status
}

func (s *fakeSidecar) endpoint(name string) platform.Endpoint {
	addr := strings.TrimPrefix(s.srv.URL, "http://")
	return platform.Endpoint{Addr: addr, AdminAddr: addr, Replica: name}
}

func testAgent(name string, concurrency, minR, maxR int32) *v1alpha1.Agent {
	a := &v1alpha1.Agent{
		ObjectMeta: metav1.ObjectMeta{Namespace: "agents", Name: name},
		Spec: v1alpha1.AgentSpec{
			Concurrency: concurrency,
			Scaling:     v1alpha1.Scaling{MinReplicas: &minR, MaxReplicas: &maxR},
		},
	}
	a.Default()
	return a
}

// noKeepAlive is the scrape client of synctest tests: an idle keep-alive
// connection parks a goroutine in a network read, which is not durably
// blocked, and would stop the bubble's clock from advancing.
func noKeepAlive() *http.Client {
	return &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
}
