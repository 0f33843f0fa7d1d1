package realnode_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/flint-dev/flint/api/v1alpha1"
	"github.com/flint-dev/flint/internal/controller"
	"github.com/flint-dev/flint/internal/testenv"
	"github.com/flint-dev/flint/internal/wire"
)

// releaseLabel marks the Agents of the test's second release; the shared
// install selects every Agent without it (installFlint), so the two
// releases never act on the same Agent.
const releaseLabel = "flint.test/release"

// A second release with sidecarTLS.enabled, beside the shared one: the
// manager issues the agent's serving certificate, the sidecar serves it on
// the real pod, the Service turns to appProtocol https, and the release's
// gateway reaches the replica over TLS, verifying the Service's DNS name
// against the CA bundle the manager published. The shared release, whose
// selector leaves the Agent out, does not know it.
func TestSidecarTLSOnARealNode(t *testing.T) {
	shared := installFlint(t)
	root, err := testenv.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const rel, relNS = "flint-tls", "flint-tls"
	image, err := flintImageValues()
	if err != nil {
		t.Fatal(err)
	}
	values := map[string]any{
		"image":         image,
		"crds":          map[string]any{"install": false},
		"agentSelector": releaseLabel + "=tls",
		"sidecarTLS":    map[string]any{"enabled": true},
		"manager":       map[string]any{"replicas": 1},
		"gateway":       map[string]any{"replicas": 1},
	}
	start := time.Now()
	if _, err := node.HelmInstall(ctx, filepath.Join(root, "deploy", "helm", "flint"), rel, relNS, values, 4*time.Minute); err != nil {
		t.Fatalf("%v\n%s", err, podsReport(relNS))
	}
	t.Cleanup(func() {
		if err := node.HelmUninstall(rel, relNS, 2*time.Minute); err != nil {
			t.Errorf("uninstall: %v", err)
		}
		_ = node.Kube.CoreV1().Namespaces().Delete(context.Background(), relNS, metav1.DeleteOptions{})
	})
	t.Logf("release %s with sidecar TLS Ready in %s", rel, time.Since(start).Round(time.Millisecond))

	ns := newNamespace(t)
	a := echoAgent(ns, "echo", minReplicas(1))
	a.Labels = map[string]string{releaseLabel: "tls"}
	shared.create(t, a)
	awaitReplicas(t, ns, "echo", 1)

	// The Service speaks TLS once the replica carries a certificate.
	testenv.Await(t, 2*time.Minute, "echo's Service serving port with appProtocol https", func() (bool, string) {
		svc, err := node.Kube.CoreV1().Services(ns).Get(ctx, "echo", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		for _, p := range svc.Spec.Ports {
			if p.Name == v1alpha1.ServingPortName {
				return ptr.Deref(p.AppProtocol, "") == v1alpha1.ServingAppProtocolTLS, fmt.Sprintf("appProtocol %q", ptr.Deref(p.AppProtocol, ""))
			}
		}
		return false, fmt.Sprintf("no port %s in %+v", v1alpha1.ServingPortName, svc.Spec.Ports)
	})

	// The replica's sidecar answers TLS with a certificate for the Service's
	// name from the CA the gateways trust.
	bundle, err := node.Kube.CoreV1().ConfigMaps(relNS).Get(ctx, rel+"-sidecar-ca-bundle", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM([]byte(bundle.Data[controller.CABundleKey])) {
		t.Fatalf("CA bundle %s/%s-sidecar-ca-bundle holds no certificate", relNS, rel)
	}
	_, ready := agentPods(t, ns, "echo")
	pod := ready[0]
	serverName := fmt.Sprintf("echo.%s.svc.cluster.local", ns)
	raw, err := node.DialContext(ctx, "tcp", net.JoinHostPort(pod.Status.PodIP, fmt.Sprint(v1alpha1.ServingPort)))
	if err != nil {
		t.Fatal(err)
	}
	conn := tls.Client(raw, &tls.Config{RootCAs: roots, ServerName: serverName, MinVersion: tls.VersionTLS12})
	hctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err = conn.HandshakeContext(hctx)
	cancel()
	if err != nil {
		t.Fatalf("TLS to the sidecar of %s as %s: %v", pod.Name, serverName, err)
	}
	cert := conn.ConnectionState().PeerCertificates[0]
	conn.Close()
	t.Logf("sidecar %s serves %v, issued by %q, valid until %s", pod.Name, cert.DNSNames, cert.Issuer.CommonName, cert.NotAfter.Format(time.RFC3339))

	// Invocations through the release's gateway Service reach it.
	gw, err := node.Kube.CoreV1().Services(relNS).Get(ctx, rel+"-gateway", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	keys, err := node.Kube.CoreV1().Secrets(relNS).Get(ctx, rel+"-api-keys", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	in := &flintInstall{client: shared.client, gateway: gw, apiKey: firstAPIKey(keys)}
	c := node.HTTPClient()
	c.Timeout = time.Minute
	testenv.Await(t, time.Minute, "the TLS release's gateway knows "+ns+"/echo", func() (bool, string) {
		status, body := fetch(ctx, c, in, in.url(ns, "echo", "/hello"))
		return status == http.StatusOK, fmt.Sprintf("%d %.200s", status, body)
	})
	// Eight requests at once (the replica takes ten) need new connections
	// from the gateway to the sidecar: every one of them is TLS.
	before := sidecarConnections(t, pod)
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for i := range 8 {
		wg.Go(func() {
			path := fmt.Sprintf("/tls/%d", i)
			if status, body := fetch(ctx, c, in, in.url(ns, "echo", path+"?sleep=1s")); status != http.StatusOK || !strings.Contains(body, path) {
				errs <- fmt.Sprintf("%s through the TLS release's gateway: %d %.300s", path, status, body)
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	after := sidecarConnections(t, pod)
	t.Logf("sidecar connections by transport before %v, after %v the eight requests", before, after)
	if d := after["tls"] - before["tls"]; d < 4 {
		t.Errorf("%.0f new TLS connections to the sidecar for eight requests at once, want at least 4", d)
	}
	if d := after["plain"] - before["plain"]; d != 0 {
		t.Errorf("%.0f new plain connections to the sidecar of a Service with appProtocol https", d)
	}

	// The shared release leaves the Agent to the other one.
	if status, body := fetch(ctx, c, shared, shared.url(ns, "echo", "/hello")); status != http.StatusNotFound {
		t.Errorf("the shared release's gateway answered %d %.200s for an Agent its selector leaves out, want 404", status, body)
	}
}

// sidecarConnections reads flint_sidecar_connections_total by transport
// from pod's sidecar admin port.
func sidecarConnections(t *testing.T, pod corev1.Pod) map[string]float64 {
	t.Helper()
	body, err := get(net.JoinHostPort(pod.Status.PodIP, fmt.Sprint(v1alpha1.AdminPort)), wire.PathMetrics)
	if err != nil {
		t.Fatalf("sidecar metrics of %s: %v", pod.Name, err)
	}
	out := map[string]float64{}
	for _, line := range strings.Split(body, "\n") {
		var transport string
		var n float64
		if _, err := fmt.Sscanf(line, "flint_sidecar_connections_total{transport=%q} %g", &transport, &n); err == nil {
			out[transport] = n
		}
	}
	if _, ok := out["tls"]; !ok {
		t.Fatalf("sidecar metrics of %s lack flint_sidecar_connections_total{transport=\"tls\"}", pod.Name)
	}
	return out
}

// fetch is one authenticated GET through in's gateway Service: the status
// and the body (status 0 and the error when there is no answer).
func fetch(ctx context.Context, c *http.Client, in *flintInstall, url string) (int, string) {
	res, err := in.get(ctx, c, url)
	if err != nil {
		return 0, err.Error()
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}
