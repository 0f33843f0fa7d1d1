package proxy

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// certReloadInterval is how often, at most, the serving certificate files
// are read again. The kubelet swaps a mounted Secret's files atomically
// when the manager renews the certificate; the sidecar picks the new one
// up within this long, with no restart and no dropped connection.
const certReloadInterval = 10 * time.Second

// servingCert serves the certificate in certFile/keyFile to TLS clients and
// reloads it when the files change. A reload that fails (a half-written
// pair, a key that does not match) keeps the previous certificate.
type servingCert struct {
	certFile, keyFile string
	log               *slog.Logger
	now               func() time.Time

	mu              sync.Mutex
	cert            *tls.Certificate
	certPEM, keyPEM []byte
	checked         time.Time
}

func newServingCert(certFile, keyFile string, log *slog.Logger) (*servingCert, error) {
	s := &servingCert{certFile: certFile, keyFile: keyFile, log: log, now: time.Now}
	if err := s.load(); err != nil {
		return nil, err
	}
	return s, nil
}

// load reads the pair; the caller holds mu or owns s.
func (s *servingCert) load() error {
	certPEM, err := os.ReadFile(s.certFile)
	if err != nil {
		return fmt.Errorf("-tls-cert-file: %w", err)
	}
	keyPEM, err := os.ReadFile(s.keyFile)
	if err != nil {
		return fmt.Errorf("-tls-key-file: %w", err)
	}
	s.checked = s.now()
	if bytes.Equal(certPEM, s.certPEM) && bytes.Equal(keyPEM, s.keyPEM) {
		return nil
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return fmt.Errorf("-tls-cert-file %s and -tls-key-file %s: %w", s.certFile, s.keyFile, err)
	}
	s.cert, s.certPEM, s.keyPEM = &cert, certPEM, keyPEM
	return nil
}

// getCertificate is the tls.Config hook, called once per handshake.
func (s *servingCert) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.now().Sub(s.checked) >= certReloadInterval {
		before := s.cert
		if err := s.load(); err != nil {
			s.log.Warn("cannot reload the serving certificate; keeping the previous one", "err", err)
		} else if s.cert != before {
			s.log.Info("serving certificate reloaded", "file", s.certFile)
		}
	}
	return s.cert, nil
}

// tlsConfig is the serving port's TLS configuration, nil without
// -tls-cert-file. HTTP/1.1 only over TLS: the gateway's TLS dialer offers
// no ALPN.
func tlsConfig(cfg Config, log *slog.Logger) (*tls.Config, error) {
	if cfg.TLSCertFile == "" {
		return nil, nil
	}
	sc, err := newServingCert(cfg.TLSCertFile, cfg.TLSKeyFile, log)
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		GetCertificate: sc.getCertificate,
		MinVersion:     tls.VersionTLS12,
		NextProtos:     []string{"http/1.1"},
	}, nil
}
