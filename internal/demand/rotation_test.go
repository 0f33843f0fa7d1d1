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

	s := NewServer(func() secret.Tokens { return *accepted.Load() }, nil)
	gw := &fakeGateway{}
	s.Attach(gw)
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	c, err := NewCollector(CollectorConfig{Gateways: []string{ts.URL}, TokenFrom: func() string { return presented.Load().(string) },
		Interval: 20 * time.Millisecond, Timeout: time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	run(t, c, func(platform.AgentKey) {})

	held := int64(0)
	step := func(what string, accept secret.Tokens, present string) {
		t.Helper()
		accepted.Store(&accept)
		presented.Store(present)
		held++
		gw.set(echo, wire.Demand{Held: held})
		eventually(t, what, func() bool { return c.Demand(echo).Held == held })
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
