package gateway

import (
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/flint-dev/flint/internal/servingcert"
)

// TestUpstreamCAFileIsReloaded: a rotated CA bundle (the mounted ConfigMap
// changing) is trusted within caReloadInterval, without a restart; an
// unreadable bundle keeps the trust the gateway had.
func TestUpstreamCAFileIsReloaded(t *testing.T) {
	const name = "echo.default.svc.cluster.local"
	oldCA, _ := servingcert.NewCA("old", time.Now(), time.Hour)
	newCA, _ := servingcert.NewCA("new", time.Now(), time.Hour)
	leafOf := func(ca *servingcert.CA) *x509.Certificate {
		certPEM, _, err := ca.Issue([]string{name}, time.Now(), time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		block, _ := pem.Decode(certPEM)
		c, _ := x509.ParseCertificate(block.Bytes)
		return c
	}
	oldLeaf, newLeaf := leafOf(oldCA), leafOf(newCA)
	file := filepath.Join(t.TempDir(), "ca.crt")
	write := func(data []byte) {
		if err := os.WriteFile(file+".tmp", data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(file+".tmp", file); err != nil {
			t.Fatal(err)
		}
	}
	write(oldCA.CertPEM)
	u, err := newUpstreamTLS(&net.Dialer{}, file)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	u.now = func() time.Time { return now }
	trusts := func(leaf *x509.Certificate) bool {
		_, err := leaf.Verify(x509.VerifyOptions{Roots: u.current().RootCAs, DNSName: name})
		return err == nil
	}
	if !trusts(oldLeaf) || trusts(newLeaf) {
		t.Fatal("initial trust wrong")
	}
	// The manager publishes new + old during a rotation.
	write(append(append([]byte{}, newCA.CertPEM...), oldCA.CertPEM...))
	if trusts(newLeaf) {
		t.Error("reloaded before the interval")
	}
	now = now.Add(caReloadInterval)
	if !trusts(newLeaf) || !trusts(oldLeaf) {
		t.Error("after a reload both CAs of the bundle must be trusted")
	}
	write([]byte("half written"))
	now = now.Add(caReloadInterval)
	if !trusts(newLeaf) {
		t.Error("a broken bundle dropped the trust the gateway had")
	}
}
