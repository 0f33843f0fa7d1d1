package controller

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flint-dev/flint/api/v1alpha1"
	"github.com/flint-dev/flint/internal/platform/platformtest"
	"github.com/flint-dev/flint/internal/testenv"
	"github.com/flint-dev/flint/internal/wire"
)

const testGatewayToken = "gateway-token-0123456789abcdef"

func tokenConfig(t *testing.T) Config {
	t.Helper()
	cfg := testConfig()
	cfg.GatewayTokenFile = filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(cfg.GatewayTokenFile, []byte(testGatewayToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := cfg.LoadGatewayToken(nil); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestSidecarRequiresTheGatewayToken(t *testing.T) {
	cfg := tokenConfig(t)
	a := testAgent("ns", "guarded")
	pod, err := render(cfg, a)
	if err != nil {
		t.Fatal(err)
	}
	sc := pod.Spec.InitContainers[0]
	if !slices.Contains(sc.Args, "-gateway-token-file=/var/run/flint/gateway-token/token") {
		t.Errorf("sidecar args %q lack the token file", sc.Args)
	}
	if len(sc.VolumeMounts) != 1 || sc.VolumeMounts[0].Name != "flint-gateway-token" || !sc.VolumeMounts[0].ReadOnly {
		t.Errorf("sidecar mounts %+v", sc.VolumeMounts)
	}
	if len(pod.Spec.Volumes) != 1 || pod.Spec.Volumes[0].Secret == nil || pod.Spec.Volumes[0].Secret.SecretName != "guarded-flint-gateway-token" {
		t.Errorf("volumes %+v", pod.Spec.Volumes)
	}
	if len(pod.Spec.Containers[0].VolumeMounts) != 0 {
		t.Error("the agent must not see the token")
	}
	// A new token does not roll the pods (TestGatewayTokenRotationKeepsThePodTemplate).
	// Without the flag nothing changes.
	if plain, _ := render(testConfig(), a); len(plain.Spec.Volumes) != 0 || len(plain.Spec.InitContainers[0].VolumeMounts) != 0 {
		t.Errorf("no token configured, yet %+v", plain.Spec.Volumes)
	}
}

// TestBypassingRequestGets403 follows the token from the manager's flag to
// the Secret it writes on the real API server, mounts that Secret's data as
// the kubelet would, starts the real sidecar with the arguments the manager
// gives it, and calls it directly: 403 without the token, 200 with it.
func TestBypassingRequestGets403(t *testing.T) {
	t.Parallel()
	env := cluster(t)
	ns := env.Namespace(t)
	agent := createAgent(t, env, ns, "guarded", func(*v1alpha1.Agent) {})
	cfg := tokenConfig(t)
	r, err := NewReconciler(env.Client, cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	a := agent.DeepCopy()
	a.Default()
	if err := r.applyGatewaySecret(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	var secret corev1.Secret
	testenv.Eventually(t, settle, func() error {
		return env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: GatewayTokenSecretName("guarded")}, &secret)
	})
	checkOwned(t, &secret.ObjectMeta, agent)
	if string(secret.Data["token"]) != testGatewayToken+"\n" {
		t.Fatalf("secret data %q", secret.Data)
	}

	// The kubelet's part: the Secret's keys as files in the mount.
	mount := t.TempDir()
	if err := os.WriteFile(filepath.Join(mount, "token"), secret.Data["token"], 0o444); err != nil {
		t.Fatal(err)
	}
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "agent") }))
	defer upstream.Close()
	args := r.cfg.sidecarArgs(a)
	for i, arg := range args {
		args[i] = strings.Replace(arg, gatewayTokenDir, mount, 1)
	}
	pc := parseSidecarArgs(t, args)
	pc.UpstreamAddr, pc.TerminationGracePeriod = upstream.Listener.Addr().String(), 0
	sc := platformtest.RunSidecar(t, pc)

	call := func(token string) int {
		req, _ := http.NewRequest(http.MethodGet, "http://"+sc.ServingAddr()+"/", nil)
		if token != "" {
			req.Header.Set(wire.HeaderGatewayToken, token)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if got := call(""); got != http.StatusForbidden {
		t.Errorf("direct request without the token: %d, want 403", got)
	}
	if got := call("guessed-token-of-some-length"); got != http.StatusForbidden {
		t.Errorf("direct request with a wrong token: %d, want 403", got)
	}
	if got := call(testGatewayToken); got != http.StatusOK {
		t.Errorf("request with the gateway's token: %d, want 200", got)
	}
}

// TestGatewayTokenFromSecret: the manager's -gateway-token-secret value
// guards sidecars, unless -gateway-token-file names a token, which wins.
func TestGatewayTokenFromSecret(t *testing.T) {
	cfg := testConfig()
	cfg.UseGatewayToken(fixedTokens(testGatewayToken))
	pod, err := render(cfg, testAgent("ns", "guarded"))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(pod.Spec.InitContainers[0].Args, "-gateway-token-file=/var/run/flint/gateway-token/token") {
		t.Errorf("a token from the Secret does not guard the sidecar: args %q", pod.Spec.InitContainers[0].Args)
	}
	fromFile := tokenConfig(t)
	fromFile.UseGatewayToken(fixedTokens("another-token-from-a-secret-0123456789"))
	if fromFile.gatewayToken() != testGatewayToken {
		t.Error("-gateway-token-file did not win over the Secret's token")
	}
}
