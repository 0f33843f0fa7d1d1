package servingcert

import (
	"bytes"
	"crypto/x509"
	"strings"
	"testing"
	"time"
)

var (
	t0    = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	names = []string{"echo.team.svc", "echo.team.svc.cluster.local"}
)

func mustCA(t *testing.T, now time.Time, life time.Duration) *CA {
	t.Helper()
	ca, err := NewCA("test CA", now, life)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func pool(t *testing.T, cas ...*CA) *x509.CertPool {
	t.Helper()
	p := x509.NewCertPool()
	for _, ca := range cas {
		p.AddCert(ca.Cert)
	}
	return p
}

// TestRenewalDecision walks a 90-day certificate through time: kept until
// two thirds of its life (day 60), renewed from then on.
func TestRenewalDecision(t *testing.T) {
	ca := mustCA(t, t0, DefaultCALifetime)
	certPEM, keyPEM, err := ca.Issue(names, t0, 90*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	roots := pool(t, ca)
	// NotBefore is backdated 5 minutes for clock skew; two thirds of the
	// validity counted from there.
	wantRenew := t0.Add(-backdate).Add((90*24*time.Hour + backdate) * 2 / 3)
	for _, c := range []struct {
		at   time.Duration
		keep bool
	}{{0, true}, {30 * 24 * time.Hour, true}, {wantRenew.Sub(t0) - time.Second, true}, {wantRenew.Sub(t0), false}, {89 * 24 * time.Hour, false}, {91 * 24 * time.Hour, false}} {
		renew, err := Check(certPEM, keyPEM, roots, names, t0.Add(c.at))
		if got := err == nil; got != c.keep {
			t.Errorf("at +%s: keep=%v (%v), want %v", c.at, got, err, c.keep)
		}
		if c.keep && !renew.Equal(wantRenew) {
			t.Errorf("at +%s: renew at %s, want %s", c.at, renew, wantRenew)
		}
	}
}

func TestCheckRefusesWhatTheGatewayWouldNotTrust(t *testing.T) {
	ca, other := mustCA(t, t0, DefaultCALifetime), mustCA(t, t0, DefaultCALifetime)
	certPEM, keyPEM, _ := ca.Issue(names, t0, DefaultLifetime)
	_, otherKey, _ := ca.Issue(names, t0, DefaultLifetime)
	for name, c := range map[string]struct {
		cert, key []byte
		roots     *x509.CertPool
		names     []string
		want      string
	}{
		"another CA":   {certPEM, keyPEM, pool(t, other), names, "unknown authority"},
		"other names":  {certPEM, keyPEM, pool(t, ca), []string{"echo.other.svc", "echo.other.svc.cluster.local"}, "names"},
		"a name fewer": {certPEM, keyPEM, pool(t, ca), names[:1], "names"},
		"another key":  {certPEM, otherKey, pool(t, ca), names, "key does not match"},
		"garbage":      {[]byte("not pem"), keyPEM, pool(t, ca), names, "no certificate"},
		"no key":       {certPEM, nil, pool(t, ca), names, "no key"},
	} {
		if _, err := Check(c.cert, c.key, c.roots, c.names, t0.Add(time.Hour)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error containing %q", name, err, c.want)
		}
	}
	// Either CA of a bundle will do: leaves of the old CA stay during a rotation.
	if _, err := Check(certPEM, keyPEM, pool(t, other, ca), names, t0.Add(time.Hour)); err != nil {
		t.Errorf("trusted through the second CA of the bundle: %v", err)
	}
}

func TestIssuedCertificateNeverOutlivesItsCA(t *testing.T) {
	ca := mustCA(t, t0, 30*24*time.Hour)
	certPEM, _, err := ca.Issue(names, t0, DefaultLifetime)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := parseCerts(certPEM)
	if !leaf[0].NotAfter.Equal(ca.Cert.NotAfter) {
		t.Errorf("leaf expires %s, CA %s", leaf[0].NotAfter, ca.Cert.NotAfter)
	}
	if leaf[0].IsCA || leaf[0].Subject.CommonName != names[0] {
		t.Errorf("leaf %+v", leaf[0].Subject)
	}
}

func TestParseCARoundTripAndRefusals(t *testing.T) {
	ca := mustCA(t, t0, DefaultCALifetime)
	back, err := ParseCA(ca.CertPEM, ca.KeyPEM)
	if err != nil || back.Fingerprint() != ca.Fingerprint() {
		t.Fatalf("round trip: %v", err)
	}
	other := mustCA(t, t0, DefaultCALifetime)
	if _, err := ParseCA(ca.CertPEM, other.KeyPEM); err == nil {
		t.Error("a CA with another's key accepted")
	}
	leafPEM, leafKey, _ := ca.Issue(names, t0, DefaultLifetime)
	if _, err := ParseCA(leafPEM, leafKey); err == nil || !strings.Contains(err.Error(), "not a CA") {
		t.Errorf("a leaf as CA: %v", err)
	}
}

func TestBundleKeepsValidPreviousCAs(t *testing.T) {
	old := mustCA(t, t0, 365*24*time.Hour)
	expired := mustCA(t, t0, time.Hour)
	cur := mustCA(t, t0.Add(2*time.Hour), DefaultCALifetime)
	previous := append(append(Bundle(old.Cert, nil, t0), expired.CertPEM...), cur.CertPEM...)
	got := Bundle(cur.Cert, previous, t0.Add(2*time.Hour))
	certs, _ := parseCerts(got)
	if len(certs) != 2 || !certs[0].Equal(cur.Cert) || !certs[1].Equal(old.Cert) {
		t.Fatalf("bundle has %d certificates, want current then old", len(certs))
	}
	// Stable: publishing again changes nothing.
	if again := Bundle(cur.Cert, got, t0.Add(3*time.Hour)); !bytes.Equal(again, got) {
		t.Error("bundle not stable")
	}
	if p, err := Pool(got); err != nil || p == nil {
		t.Error(err)
	}
}
