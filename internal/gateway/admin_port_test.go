package gateway

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/flint-dev/flint/internal/platform/platformtest"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestAdminPortKeepsAdminOffThePublicPort: with AdminHandler on a listener
// of its own, the serving port answers invocations and the probes only;
// metrics, the dashboard and the agent listing are on the admin port.
func TestAdminPortKeepsAdminOffThePublicPort(t *testing.T) {
	gw, public := startGateway(t, platformtest.New(testAgent(1)), nil, nil)
	admin := httptest.NewServer(gw.AdminHandler())
	defer admin.Close()
	for _, path := range []string{"/metrics", "/v1/agents", "/api/v1/agents", "/ui/"} {
		if code, _ := get(t, public.URL+path); code != http.StatusNotFound {
			t.Errorf("public port %s: %d, want 404", path, code)
		}
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		if code, _ := get(t, public.URL+path); code != http.StatusOK {
			t.Errorf("public port %s: %d, want 200 (load balancers probe it)", path, code)
		}
	}
	for _, path := range []string{"/metrics", "/v1/agents", "/healthz", "/readyz"} {
		if code, body := get(t, admin.URL+path); code != http.StatusOK {
			t.Errorf("admin port %s: %d %s", path, code, body)
		}
	}
	if code, _ := get(t, public.URL+"/v1/agents/ns/nope/"); code != http.StatusNotFound {
		t.Errorf("unknown agent on the public port: %d, want 404", code)
	}
}

// syncingPlatform reports not synced until told.
type syncingPlatform struct {
	*platformtest.Platform
	synced atomic.Bool
}

func (p *syncingPlatform) HasSynced() bool { return p.synced.Load() }

// TestStartingGatewayAnswers503: before its view of the cluster has synced
// the gateway already listens; /readyz and an agent it has not seen yet get
// 503 + Retry-After (not 404: the agent may exist).
func TestStartingGatewayAnswers503(t *testing.T) {
	p := &syncingPlatform{Platform: platformtest.New()}
	_, srv := startGateway(t, p, nil, nil)
	if code, _ := get(t, srv.URL+"/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz before sync: %d, want 503", code)
	}
	resp, err := http.Get(srv.URL + "/v1/agents/ns/echo/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("agent before sync: %d Retry-After %q, want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	p.synced.Store(true)
	if code, _ := get(t, srv.URL+"/readyz"); code != http.StatusOK {
		t.Errorf("/readyz after sync: %d", code)
	}
	if code, _ := get(t, srv.URL+"/v1/agents/ns/echo/"); code != http.StatusNotFound {
		t.Errorf("unknown agent after sync: %d, want 404", code)
	}
}

// TestAdminPortMetricsNeedNoKey: with authentication on, the private admin
// port serves /metrics to scrapers without a key (only the network reaches
// it), while the agent listing there still needs one.
func TestAdminPortMetricsNeedNoKey(t *testing.T) {
	keys := filepath.Join(t.TempDir(), "keys")
	if err := os.WriteFile(keys, []byte("admin-port-test-key-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	gw, _ := startGateway(t, platformtest.New(testAgent(1)), nil, func(c *Config) {
		c.Auth = AuthConfig{APIKeysFile: keys}
	})
	admin := httptest.NewServer(gw.AdminHandler())
	defer admin.Close()
	if code, body := get(t, admin.URL+"/metrics"); code != http.StatusOK {
		t.Errorf("admin port /metrics without a key: %d %s, want 200", code, body)
	}
	if code, _ := get(t, admin.URL+"/v1/agents"); code != http.StatusUnauthorized {
		t.Errorf("admin port /v1/agents without a key: %d, want 401", code)
	}
}
