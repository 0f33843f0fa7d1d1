package load

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// TestCountsByOutcome: answers cycle through 200, 503 with Retry-After,
// 503 without, 500; the counts follow.
func TestCountsByOutcome(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch n.Add(1) % 4 {
		case 0:
			w.Write([]byte("ok"))
		case 1:
			w.Header().Set("Retry-After", "1")
			http.Error(w, "full", http.StatusServiceUnavailable)
		case 2:
			http.Error(w, "no retry-after", http.StatusServiceUnavailable)
		case 3:
			http.Error(w, "broken", http.StatusInternalServerError)
		}
	}))
	defer srv.Close()

	l := Start(vegeta.NewAttacker(vegeta.Timeout(10*time.Second)), vegeta.NewStaticTargeter(vegeta.Target{Method: "GET", URL: srv.URL}), 100)
	time.Sleep(400 * time.Millisecond)
	l.Stop()

	ok, unavailable, broken := l.Count(http.StatusOK), l.Count(http.StatusServiceUnavailable), l.Count(http.StatusInternalServerError)
	total := int(n.Load())
	if total < 8 || ok+unavailable+broken != total {
		t.Fatalf("%d answers sent, counted %d + %d + %d: %s", total, ok, unavailable, broken, l)
	}
	if got := l.Failed(); got != total-ok {
		t.Errorf("Failed() = %d, want every answer but the %d 200s of %d: %s", got, ok, total, l)
	}
	// The 503s without Retry-After and the 500s: a quarter each.
	withRetry := (total + 3) / 4
	if got := l.FailedBeyondOverload(); got != total-ok-withRetry {
		t.Errorf("FailedBeyondOverload() = %d, want %d: %s", got, total-ok-withRetry, l)
	}
	s := l.String()
	if !strings.Contains(s, "no retry-after") || !strings.Contains(s, "broken") || !strings.Contains(s, `first 503 with Retry-After "503 full"`) {
		t.Errorf("String() = %s; want examples of both failures and the overload answer", s)
	}
}
