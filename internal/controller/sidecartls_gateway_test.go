package controller

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flint-dev/flint/api/v1alpha1"
	"github.com/flint-dev/flint/internal/gateway"
	"github.com/flint-dev/flint/internal/platform"
	"github.com/flint-dev/flint/internal/platform/platformtest"
)

// startTLSSidecar runs the real sidecar with the manager's arguments for a,
// its certificate files being certPEM and keyPEM (the kubelet's part).
func startTLSSidecar(t *testing.T, cfg Config, a *v1alpha1.Agent, certPEM, keyPEM []byte, upstream string) string {
	t.Helper()
	mount := t.TempDir()
	for name, data := range map[string][]byte{corev1.TLSCertKey: certPEM, corev1.TLSPrivateKeyKey: keyPEM} {
		if err := os.WriteFile(filepath.Join(mount, name), data, 0o444); err != nil {
			t.Fatal(err)
		}
	}
	args := cfg.sidecarArgs(a)
	for i, arg := range args {
		args[i] = strings.Replace(arg, sidecarTLSDir, mount, 1)
	}
	pc := parseSidecarArgs(t, args)
	if pc.TLSCertFile != filepath.Join(mount, corev1.TLSCertKey) {
		t.Fatalf("sidecar TLS certificate file %q", pc.TLSCertFile)
	}
	pc.UpstreamAddr, pc.TerminationGracePeriod = upstream, 0
	sc := platformtest.RunSidecar(t, pc)
	return sc.ServingAddr()
}

// TestGatewayReachesTLSSidecarByPodIP follows the certificate from the
// manager to the sidecar and the CA bundle to the gateway: the manager
// issues on the real API server, the real sidecar serves the Secret's files
// with the manager's arguments, and the real gateway, given the bundle
// ConfigMap's ca.crt as -upstream-ca-file, dials the sidecar's IP and
// verifies the Service's DNS name. A sidecar whose certificate (from the
// same CA) names another Service is refused.
func TestGatewayReachesTLSSidecarByPodIP(t *testing.T) {
	env, ns, caNS, a := tlsAgent(t)
	ctx := context.Background()
	r, err := NewReconciler(env.Client, tlsConfig(caNS), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.applyServingCert(ctx, a); err != nil {
		t.Fatal(err)
	}
	// The Service tells gateways to speak TLS once the replicas roll out.
	rolled := &appsv1.Deployment{}
	if err := r.applyService(ctx, a, rolled); err != nil {
		t.Fatal(err)
	}
	var svc corev1.Service
	if err := get(env, ns, "secure", &svc); err != nil {
		t.Fatal(err)
	}
	if p := svc.Spec.Ports[0]; p.Name != v1alpha1.ServingPortName || deref(p.AppProtocol) != v1alpha1.ServingAppProtocolTLS {
		t.Errorf("serving port %+v: the gateways would not speak TLS", p)
	}
	var secret corev1.Secret
	var bundle corev1.ConfigMap
	if err := errors.Join(get(env, ns, SidecarTLSSecretName("secure"), &secret), get(env, caNS, DefaultSidecarCABundle, &bundle)); err != nil {
		t.Fatal(err)
	}

	agentSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "agent over TLS") }))
	defer agentSrv.Close()
	good := startTLSSidecar(t, r.cfg, a, secret.Data[corev1.TLSCertKey], secret.Data[corev1.TLSPrivateKeyKey], agentSrv.Listener.Addr().String())
	ca, err := r.ca.load(ctx, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	otherCert, otherKey, err := ca.ca.Issue(r.cfg.SidecarTLS.ServiceDNSNames(ns, "other"), time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	impostor := startTLSSidecar(t, r.cfg, a, otherCert, otherKey, agentSrv.Listener.Addr().String())

	caFile := filepath.Join(t.TempDir(), CABundleKey)
	if err := os.WriteFile(caFile, []byte(bundle.Data[CABundleKey]), 0o444); err != nil {
		t.Fatal(err)
	}
	gcfg := gateway.DefaultConfig()
	gcfg.UpstreamCAFile = caFile
	gcfg.CapacityHold = 500 * time.Millisecond
	ga := platformtest.Agent(ns, "secure", 0)
	ga.Spec.Timeouts.ColdStart = &metav1.Duration{Duration: 2 * time.Second}
	plat := platformtest.New(ga)
	gw, err := gateway.New(gcfg, plat, nil, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	front := httptest.NewServer(gw)
	defer front.Close()
	key := platform.AgentKey{Namespace: ns, Name: "secure"}
	// What the kube platform makes of the Service and its EndpointSlice:
	// the pod's IP and port, verified as the Service's full DNS name.
	serverName := "secure." + ns + ".svc.cluster.local"
	invoke := func() (int, string) {
		res, err := http.Get(front.URL + "/v1/agents/" + ns + "/secure/")
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	plat.SetReady(key, platform.Endpoint{Addr: good, AdminAddr: good, Replica: "secure-1", TLSServerName: serverName})
	if code, body := invoke(); code != http.StatusOK || body != "agent over TLS" {
		t.Errorf("through the gateway to the TLS sidecar: %d %q", code, body)
	}
	plat.SetReady(key, platform.Endpoint{Addr: impostor, AdminAddr: impostor, Replica: "secure-2", TLSServerName: serverName})
	code, body := invoke()
	t.Logf("impostor sidecar: %d %s", code, strings.TrimSpace(body))
	if code < 500 || strings.Contains(body, "agent over TLS") {
		t.Errorf("a sidecar with a certificate for another Service answered: %d %q", code, body)
	}
}
