// Package servingcert issues the sidecars' TLS serving certificates: a
// self-signed ECDSA P-256 CA the manager keeps, leaf certificates for an
// agent's Service DNS names, the decision of when to renew one, and the CA
// bundle the gateways trust. Only the standard library; no Kubernetes here
// (internal/controller stores all of it in Secrets and a ConfigMap).
package servingcert

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"time"
)

const (
	// DefaultCALifetime is the CA's validity. Rotating it needs every
	// gateway to trust the new one first (docs/manager.md), so it is long.
	DefaultCALifetime = 10 * 365 * 24 * time.Hour
	// DefaultLifetime is a serving certificate's validity, cert-manager's
	// default.
	DefaultLifetime = 90 * 24 * time.Hour
	// backdate covers clocks a little behind the manager's.
	backdate = 5 * time.Minute
)

// CA signs serving certificates.
type CA struct {
	Cert    *x509.Certificate
	Key     *ecdsa.PrivateKey
	CertPEM []byte
	KeyPEM  []byte
}

// NewCA makes a self-signed CA valid from now for lifetime.
func NewCA(commonName string, now time.Time, lifetime time.Duration) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate CA key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(lifetime),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("self-sign CA: %w", err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return nil, err
	}
	return ParseCA(encodeCert(der), keyPEM)
}

// ParseCA reads a CA from PEM, checking the key matches and the
// certificate may sign others.
func ParseCA(certPEM, keyPEM []byte) (*CA, error) {
	certs, err := parseCerts(certPEM)
	if err != nil || len(certs) == 0 {
		return nil, fmt.Errorf("CA certificate: %w", errors.Join(err, errors.New("no PEM certificate")))
	}
	cert := certs[0]
	if !cert.IsCA || cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, fmt.Errorf("certificate %q is not a CA (basic constraints and keyCertSign usage needed)", cert.Subject.CommonName)
	}
	block, _ := pem.Decode(keyPEM)
	if block == nil {
		return nil, errors.New("CA key: no PEM block")
	}
	key, err := parseKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("CA key: %w", err)
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return nil, errors.New("CA key does not match the CA certificate")
	}
	return &CA{Cert: cert, Key: key, CertPEM: encodeCert(cert.Raw), KeyPEM: keyPEM}, nil
}

// Fingerprint names the CA in logs and annotations without its key.
func (ca *CA) Fingerprint() string {
	sum := sha256.Sum256(ca.Cert.Raw)
	return hex.EncodeToString(sum[:8])
}

// Issue makes a serving certificate and key for dnsNames (the first is the
// subject's common name), valid from now for lifetime, never past the CA.
func (ca *CA) Issue(dnsNames []string, now time.Time, lifetime time.Duration) (certPEM, keyPEM []byte, err error) {
	if len(dnsNames) == 0 {
		return nil, nil, errors.New("issue: no DNS name")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, nil, err
	}
	notAfter := now.Add(lifetime)
	if notAfter.After(ca.Cert.NotAfter) {
		notAfter = ca.Cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: dnsNames[0]},
		DNSNames:     slices.Clone(dnsNames),
		NotBefore:    now.Add(-backdate),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		return nil, nil, fmt.Errorf("sign certificate for %v: %w", dnsNames, err)
	}
	if keyPEM, err = encodeKey(key); err != nil {
		return nil, nil, err
	}
	return encodeCert(der), keyPEM, nil
}

// RenewAt is when a certificate is due for renewal: two thirds into its
// validity, leaving a third of it for the renewal to reach the pods (the
// kubelet refreshes mounted Secrets within a minute or two) and for the
// manager to be down a while.
func RenewAt(cert *x509.Certificate) time.Time {
	life := cert.NotAfter.Sub(cert.NotBefore)
	return cert.NotBefore.Add(life * 2 / 3)
}

// Check decides whether a stored serving certificate can stay: it must
// parse, match its key, chain to one of roots, name every one of dnsNames
// (and only them), and not be due for renewal at now. It returns when to
// renew it, or an error saying why a new one is needed.
func Check(certPEM, keyPEM []byte, roots *x509.CertPool, dnsNames []string, now time.Time) (time.Time, error) {
	certs, err := parseCerts(certPEM)
	if err != nil || len(certs) == 0 {
		return time.Time{}, fmt.Errorf("no certificate: %w", errors.Join(err, errors.New("no PEM block")))
	}
	leaf := certs[0]
	block, _ := pem.Decode(keyPEM)
	if block == nil {
		return time.Time{}, errors.New("no key")
	}
	key, err := parseKey(block.Bytes)
	if err != nil {
		return time.Time{}, err
	}
	if !key.PublicKey.Equal(leaf.PublicKey) {
		return time.Time{}, errors.New("key does not match the certificate")
	}
	if !slices.Equal(slices.Sorted(slices.Values(leaf.DNSNames)), slices.Sorted(slices.Values(dnsNames))) {
		return time.Time{}, fmt.Errorf("names %v, want %v", leaf.DNSNames, dnsNames)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		return time.Time{}, err
	}
	renew := RenewAt(leaf)
	if !now.Before(renew) {
		return renew, fmt.Errorf("due for renewal since %s (expires %s)", renew.UTC().Format(time.RFC3339), leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	return renew, nil
}

// Bundle is the PEM the gateways trust: current first, then every CA
// certificate of previous that is still valid at now and is not current.
// Keeping the previous CA while leaves it signed are still in use lets a
// CA be replaced without a moment where some sidecar is not trusted.
func Bundle(current *x509.Certificate, previous []byte, now time.Time) []byte {
	var out bytes.Buffer
	out.Write(encodeCert(current.Raw))
	old, _ := parseCerts(previous) // an unreadable old bundle is replaced
	for _, c := range old {
		if c.IsCA && !c.Equal(current) && now.Before(c.NotAfter) {
			out.Write(encodeCert(c.Raw))
		}
	}
	return out.Bytes()
}

// Pool parses a PEM bundle into a certificate pool.
func Pool(bundle []byte) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(bundle) {
		return nil, errors.New("CA bundle holds no PEM certificate")
	}
	return pool, nil
}

func parseCerts(data []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return out, nil
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return out, err
		}
		out = append(out, c)
	}
}

func parseKey(der []byte) (*ecdsa.PrivateKey, error) {
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		if ec, err2 := x509.ParseECPrivateKey(der); err2 == nil {
			return ec, nil
		}
		return nil, err
	}
	ec, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("key is %T, want ECDSA", k)
	}
	return ec, nil
}

func encodeCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func encodeKey(k *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("encode key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

func newSerial() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("serial number: %w", err)
	}
	return n, nil
}
