package e2e

import (
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flint-dev/flint/internal/demand"
	"github.com/flint-dev/flint/internal/reload"
	"github.com/flint-dev/flint/internal/testutil"
	"github.com/flint-dev/flint/internal/wire"
)

// TestSecretRotationUnderLoad rotates the three shared secrets a process
// reads from a mounted file — the API keys, the control token and the
// gateway token — across real processes (two `flint gateway`, two `flint
// proxy`) under steady load, following docs/operations.md step by step,
// with every process's copy of a file updated at a different moment, as
// the kubelet updates each pod's mount on its own schedule. No process
// restarts and no request fails; at the end the old values are refused.
func TestSecretRotationUnderLoad(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	newSecret := func() string { return rand.Text() + rand.Text() }
	oldKey, newKey := newSecret(), newSecret()
	oldControl, newControl := newSecret(), newSecret()
	oldGW, newGW := newSecret(), newSecret()

	// Each process's own copy of each file (its "mount").
	copies := map[string][]string{} // secret -> files
	mount := func(process, secret, content string) string {
		p := filepath.Join(dir, process, secret)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		copies[secret] = append(copies[secret], p)
		return p
	}
	// update writes every copy of a secret, 300ms apart.
	update := func(secret string, lines ...string) {
		for i, p := range copies[secret] {
			if i > 0 {
				time.Sleep(300 * time.Millisecond)
			}
			tmp := p + ".tmp" // the kubelet swaps a mount's files atomically
			if err := os.WriteFile(tmp, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(tmp, p); err != nil {
				t.Fatal(err)
			}
		}
	}

	var replicas []string
	var sidecars []*proc
	var sidecarAddrs []string
	for i := range 2 {
		agent := startRecordingAgent(t)
		serving, admin := testutil.FreeAddr(t), testutil.FreeAddr(t)
		tokenFile := mount(fmt.Sprintf("sidecar%d", i), "gateway-token", oldGW+"\n")
		sidecars = append(sidecars, start(t, repoRoot, flintBin, "proxy", "-serving-addr", serving, "-admin-addr", admin,
			"-upstream", agent.srv.Listener.Addr().String(), "-concurrency", "100", "-probe-path", "/healthz",
			"-drain-delay", "100ms", "-gateway-token-file", tokenFile))
		sidecarAddrs = append(sidecarAddrs, serving)
		replicas = append(replicas, fmt.Sprintf("default/echo=%s@%s", serving, admin))
	}
	file := writeAgents(t, echoAgent("echo", "  concurrency: 100"))
	var gateways []*proc
	var gwAddrs, controlAddrs []string
	for i := range 2 {
		name := fmt.Sprintf("gateway%d", i)
		addr, control := testutil.FreeAddr(t), testutil.FreeAddr(t)
		gw, _ := startStaticGateway(t, file, addr, replicas,
			"-api-keys-file", mount(name, "api-keys", oldKey+"\n"),
			"-sidecar-token-file", mount(name, "gateway-token", oldGW+"\n"),
			"-control-addr", control, "-control-token-file", mount(name, "control-token", oldControl+"\n"))
		gateways = append(gateways, gw)
		gwAddrs, controlAddrs = append(gwAddrs, addr), append(controlAddrs, control)
	}
	// The manager's side of the control token, with the manager's code:
	// it presents the first line of its (followed) copy.
	var managerLog testutil.SyncBuffer
	managerToken, err := demand.WatchToken(mount("manager", "control-token", oldControl+"\n"), slog.New(slog.NewTextHandler(&managerLog, nil)))
	if err != nil {
		t.Fatal(err)
	}

	// Load: invocations through both gateways with the callers' key, and
	// the autoscaler's demand reads of both gateways' control ports.
	var apiKey atomic.Value
	apiKey.Store(oldKey)
	c := newClient(t)
	var ok, failed atomic.Int64
	var failures sync.Map
	fail := func(what string) {
		failed.Add(1)
		failures.LoadOrStore(what, struct{}{})
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				var req *http.Request
				if w < 4 { // invocations, a few hundred a second: enough to meet every moment of a switch
					time.Sleep(2 * time.Millisecond)
					req, _ = http.NewRequest(http.MethodGet, "http://"+gwAddrs[(w+n)%2]+"/v1/agents/default/echo/x", nil)
					req.Header.Set("Authorization", "Bearer "+apiKey.Load().(string))
				} else { // the manager reading demand
					req, _ = http.NewRequest(http.MethodGet, "http://"+controlAddrs[w%2]+demand.DemandPath, nil)
					req.Header.Set("Authorization", "Bearer "+managerToken.Get().Presented())
					time.Sleep(20 * time.Millisecond)
				}
				res, err := c.Do(req)
				if err != nil {
					fail(err.Error())
					continue
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode != http.StatusOK {
					fail(fmt.Sprintf("%s: %d", req.URL, res.StatusCode))
					continue
				}
				ok.Add(1)
			}
		})
	}

	// reloaded waits until every process has logged one more reload of what.
	type watched struct {
		out  interface{ String() string }
		want int
	}
	counts := map[string][]*watched{}
	watch := func(what string, outs ...interface{ String() string }) {
		for _, o := range outs {
			counts[what] = append(counts[what], &watched{out: o})
		}
	}
	watch("API keys", gateways[0].out, gateways[1].out)
	watch("control token", gateways[0].out, gateways[1].out, &managerLog)
	watch("gateway token", gateways[0].out, gateways[1].out, sidecars[0].out, sidecars[1].out)
	reloaded := func(step string, whats ...string) {
		t.Helper()
		deadline := time.Now().Add(3 * reload.Interval)
		for _, what := range whats {
			for i, w := range counts[what] {
				w.want++
				for strings.Count(w.out.String(), what+" reloaded") < w.want {
					if time.Now().After(deadline) {
						t.Fatalf("%s: process %d never reloaded the %s", step, i, what)
					}
					time.Sleep(50 * time.Millisecond)
				}
			}
		}
		t.Logf("%s: every process reloaded (%d requests answered so far, %d failed)", step, ok.Load(), failed.Load())
	}

	begin := time.Now()
	// 1. The new value goes in second: accepted everywhere, not yet used.
	update("api-keys", oldKey, newKey)
	update("control-token", oldControl, newControl)
	update("gateway-token", oldGW, newGW)
	reloaded("new value added", "API keys", "control token", "gateway token")
	// 2. Swap: the new value is presented (callers move to the new key).
	apiKey.Store(newKey)
	update("control-token", newControl, oldControl)
	update("gateway-token", newGW, oldGW)
	reloaded("swapped", "control token", "gateway token")
	// 3. The old value goes.
	update("api-keys", newKey)
	update("control-token", newControl)
	update("gateway-token", newGW)
	reloaded("old value removed", "API keys", "control token", "gateway token")
	rotation := time.Since(begin)
	close(stop)
	wg.Wait()

	t.Logf("rotation of three secrets took %s; %d requests answered, %d failed", rotation.Round(time.Millisecond), ok.Load(), failed.Load())
	if failed.Load() > 0 {
		failures.Range(func(k, _ any) bool { t.Errorf("failed during the rotation: %v", k); return true })
	}
	if ok.Load() < 100 {
		t.Errorf("only %d requests answered: the load did not run", ok.Load())
	}

	// The old values are refused now, the new ones accepted.
	status := func(url, header, value string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		req.Header.Set(header, value)
		res, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode
	}
	for i := range 2 {
		for _, check := range []struct {
			what, url, header, value string
			want                     int
		}{
			{"old API key", "http://" + gwAddrs[i] + "/v1/agents/default/echo/x", "Authorization", "Bearer " + oldKey, http.StatusUnauthorized},
			{"new API key", "http://" + gwAddrs[i] + "/v1/agents/default/echo/x", "Authorization", "Bearer " + newKey, http.StatusOK},
			{"old control token", "http://" + controlAddrs[i] + demand.DemandPath, "Authorization", "Bearer " + oldControl, http.StatusUnauthorized},
			{"new control token", "http://" + controlAddrs[i] + demand.DemandPath, "Authorization", "Bearer " + newControl, http.StatusOK},
			{"old gateway token, straight to a sidecar", "http://" + sidecarAddrs[i] + "/x", wire.HeaderGatewayToken, oldGW, http.StatusForbidden},
			{"new gateway token, straight to a sidecar", "http://" + sidecarAddrs[i] + "/x", wire.HeaderGatewayToken, newGW, http.StatusOK},
		} {
			if got := status(check.url, check.header, check.value); got != check.want {
				t.Errorf("%s (process %d): %d, want %d", check.what, i, got, check.want)
			}
		}
	}
	for i, p := range append(gateways, sidecars...) {
		if strings.Contains(p.out.String(), "not usable") {
			t.Errorf("process %d refused a rotation step:\n%s", i, p.out.String())
		}
	}
}
