package gateway

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/flint-dev/flint/internal/platform"
	"github.com/flint-dev/flint/internal/platform/platformtest"
)

// serviceCert issues, from a fresh CA, a certificate naming only dnsName
// (no IP), as a cluster's issuer does for a Service. It returns the server
// certificate and the CA in PEM.
func serviceCert(t *testing.T, dnsName string) (tls.Certificate, []byte) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2), DNSNames: []string{dnsName},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, leaf, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key},
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
}

// TestTLSUpstreamIsVerifiedAsTheServiceWhileDialingThePod: the replica
// listens on 127.0.0.1 with a certificate for the Service's DNS name only;
// the gateway dials the IP, sends the Service name as SNI and verifies it.
func TestTLSUpstreamIsVerifiedAsTheServiceWhileDialingThePod(t *testing.T) {
	const svcName = "echo.default.svc.cluster.local"
	cert, caPEM := serviceCert(t, svcName)
	var mu sync.Mutex
	var sni []string
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello over TLS")
	}))
	up.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
		mu.Lock()
		sni = append(sni, h.ServerName)
		mu.Unlock()
		return nil, nil
	}}
	up.StartTLS()
	defer up.Close()
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, caPEM, 0o600); err != nil {
		t.Fatal(err)
	}

	p := platformtest.New(testAgent(0))
	addr := up.Listener.Addr().String()
	p.SetReady(echoKey, platform.Endpoint{Addr: addr, AdminAddr: addr, Replica: "echo-1", TLSServerName: svcName})
	_, gw := startGateway(t, p, nil, func(c *Config) { c.UpstreamCAFile = caFile })
	for range 3 {
		res, err := client(t).Get(gw.URL + "/v1/agents/default/echo/")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || string(body) != "hello over TLS" {
			t.Fatalf("got %d %q", res.StatusCode, body)
		}
	}
	mu.Lock()
	if len(sni) != 1 || sni[0] != svcName {
		t.Errorf("TLS handshakes sent server names %q, want one handshake (kept alive) as %q", sni, svcName)
	}
	mu.Unlock()

	// A certificate that does not name the Service is refused: the request
	// fails rather than reaching an impostor.
	p.SetReady(echoKey, platform.Endpoint{Addr: addr, AdminAddr: addr, Replica: "echo-1", TLSServerName: "other.default.svc.cluster.local"})
	res, err := client(t).Get(gw.URL + "/v1/agents/default/echo/")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusBadGateway {
		t.Errorf("replica whose certificate names another Service: got %d, want 502", res.StatusCode)
	}
}

func TestUpstreamCAFileMustHoldCertificates(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(bad, []byte("not a certificate"), 0o600)
	cfg := DefaultConfig()
	cfg.UpstreamCAFile = bad
	if _, err := New(cfg, platformtest.New(), nil, discardLogger(), nil); err == nil {
		t.Fatal("a CA file without certificates was accepted")
	}
}

func TestTLSHostRoundTrips(t *testing.T) {
	for _, addr := range []string{"10.244.1.5:8012", "[fd00::1]:8012", "[2001:db8:0:1:2:3:4:5]:443"} {
		host := tlsHost(addr, "echo.ns.svc.cluster.local")
		dial, name, err := splitTLSHost(host)
		if err != nil || dial != addr || name != "echo.ns.svc.cluster.local" {
			t.Errorf("%s -> %s -> (%q, %q, %v)", addr, host, dial, name, err)
		}
	}
	for _, bad := range []string{"echo.ns.svc:80", "10-244-1-5:80", "x"} {
		if _, _, err := splitTLSHost(bad); err == nil {
			t.Errorf("splitTLSHost(%q) accepted it", bad)
		}
	}
}
