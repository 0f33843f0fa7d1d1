package demand

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flint-dev/flint/internal/platform"
	"github.com/flint-dev/flint/internal/secret"
	"github.com/flint-dev/flint/internal/wire"
)

var rotationAgent = platform.AgentKey{Namespace: "ns", Name: "rotated"}

// heldOnly is a gateway holding a number of requests for rotationAgent.
type heldOnly struct{ held *atomic.Int64 }

func (h heldOnly) Demand(platform.AgentKey) wire.Demand { return wire.Demand{Held: h.held.Load()} }
func (h heldOnly) DemandKeys() []platform.AgentKey      { return []platform.AgentKey{rotationAgent} }

// TestControlTokenRotation walks the rotation of docs/operations.md with
// the gateway's side (accepts every line) and the manager's side (presents
// the first line) switching at different moments: the collector reads the
// gateway's demand at every step, and the old token is refused at the end.
func TestControlTokenRotation(t *testing.T) {
	const old, next = "old-control-token-0123456789", "new-control-token-0123456789"
	var accepted atomic.Pointer[secret.Tokens]
	accepted.Store(&secret.Tokens{old})
	var presented atomic.Value
	presented.Store(old)

	s := NewFollowingServer(func() secret.Tokens { return *accepted.Load() }, nil)
	var held atomic.Int64
	s.Attach(heldOnly{&held})
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	c, err := NewCollector(CollectorConfig{Gateways: []string{ts.URL}, TokenFrom: func() string { return presented.Load().(string) },
		Interval: 20 * time.Millisecond, Timeout: time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	run(t, c, func(platform.AgentKey) {})

	step := func(what string, accept secret.Tokens, present string) {
		t.Helper()
		accepted.Store(&accept)
		presented.Store(present)
		want := held.Add(1)
		// Each step's count reaches the collector only through a read
		// the gateway accepted.
		deadline := time.Now().Add(10 * time.Second)
		for c.Demand(rotationAgent).Held != want {
			if time.Now().After(deadline) {
				t.Fatalf("%s: the collector never read the gateway's demand", what)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	step("before", secret.Tokens{old}, old)
	step("new token added on the gateway", secret.Tokens{old, next}, old)
	step("the manager switched first", secret.Tokens{old, next}, next)
	step("swapped on the gateway", secret.Tokens{next, old}, next)
	step("old token removed", secret.Tokens{next}, next)

	req, _ := http.NewRequest(http.MethodGet, ts.URL+DemandPath, nil)
	req.Header.Set("Authorization", "Bearer "+old)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized {
		t.Errorf("the removed token got %d, want 401", res.StatusCode)
	}
}
