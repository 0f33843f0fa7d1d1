package proxy

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flint-dev/flint/internal/servingcert"
	"github.com/flint-dev/flint/internal/wire"
)

const tlsName = "echo.team.svc.cluster.local"

func writePair(t *testing.T, dir string, ca *servingcert.CA, names ...string) (certFile, keyFile string) {
	t.Helper()
	certPEM, keyPEM, err := ca.Issue(names, time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	// Written as the kubelet does: whole files swapped in.
	for f, data := range map[string][]byte{certFile: certPEM, keyFile: keyPEM} {
		if err := os.WriteFile(f+".new", data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(f+".new", f); err != nil {
			t.Fatal(err)
		}
	}
	return certFile, keyFile
}

// TestServingPortSpeaksTLS: with a certificate the serving port answers
// TLS clients that verify the Service name and plain HTTP clients alike,
// and the admin port stays plain for the kubelet.
func TestServingPortSpeaksTLS(t *testing.T) {
	ca, err := servingcert.NewCA("test", time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	up := upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "agent") }))
	cfg := testConfig(hostOf(up))
	cfg.TLSCertFile, cfg.TLSKeyFile = writePair(t, t.TempDir(), ca, tlsName)
	s := startSidecar(t, cfg, true)

	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: tlsName}}}
	defer client.CloseIdleConnections()
	if r := get(t, client, "https://"+s.ServingAddr()+"/"); r.code != 200 || r.body != "agent" {
		t.Errorf("over TLS: %d %q", r.code, r.body)
	}
	// Plain HTTP still works on the same port: the gateways switch to TLS
	// only once every replica serves it.
	plain := newClient(t)
	if r := get(t, plain, "http://"+s.ServingAddr()+"/"); r.code != 200 || r.body != "agent" {
		t.Errorf("plain HTTP on the TLS port: %d %q", r.code, r.body)
	}
	// A client expecting another name refuses the certificate.
	other := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: "other.team.svc.cluster.local"}}}
	if res, err := other.Get("https://" + s.ServingAddr() + "/"); err == nil {
		res.Body.Close()
		t.Error("a certificate for another name was accepted")
	} else if !strings.Contains(err.Error(), "certificate") {
		t.Errorf("other name: %v", err)
	}
	if r := get(t, plain, "http://"+s.AdminAddr()+wire.PathHealthz); r.code != 200 {
		t.Errorf("admin port over plain HTTP: %d", r.code)
	}
	// The serving port's connections by transport (the refused name's
	// handshake counts as TLS): how an operator sees which one gateways use.
	m := get(t, plain, "http://"+s.AdminAddr()+wire.PathMetrics).body
	for _, want := range []string{`flint_sidecar_connections_total{transport="plain"} 1`, `flint_sidecar_connections_total{transport="tls"} 2`} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// TestServingCertificateReloads: a renewed pair is served once the reload
// interval has passed; a broken pair keeps the previous certificate.
func TestServingCertificateReloads(t *testing.T) {
	ca, _ := servingcert.NewCA("test", time.Now(), time.Hour)
	dir := t.TempDir()
	certFile, keyFile := writePair(t, dir, ca, tlsName)
	sc, err := newServingCert(certFile, keyFile, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	sc.now = func() time.Time { return now }
	serial := func() string {
		c, err := sc.getCertificate(nil)
		if err != nil {
			t.Fatal(err)
		}
		leaf, _ := x509.ParseCertificate(c.Certificate[0])
		return leaf.SerialNumber.String()
	}
	first := serial()
	writePair(t, dir, ca, tlsName)
	if serial() != first {
		t.Error("reloaded before the interval")
	}
	now = now.Add(certReloadInterval)
	second := serial()
	if second == first {
		t.Fatal("renewed certificate not served after the interval")
	}
	if err := os.WriteFile(keyFile, []byte("half written"), 0o600); err != nil {
		t.Fatal(err)
	}
	now = now.Add(certReloadInterval)
	if serial() != second {
		t.Error("a broken pair replaced the served certificate")
	}
}

func TestTLSFlagsGoTogether(t *testing.T) {
	cfg := testConfig("127.0.0.1:1")
	cfg.TLSCertFile = "/x/tls.crt"
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "-tls-key-file") {
		t.Errorf("cert without key: %v", err)
	}
	cfg.TLSKeyFile = filepath.Join(t.TempDir(), "missing")
	cfg.TLSCertFile = cfg.TLSKeyFile
	if _, err := New(cfg, nil); err == nil || !strings.Contains(err.Error(), "-tls-cert-file") {
		t.Errorf("missing files: %v", err)
	}
}
