package proxy

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
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
// no ALPN. The serving port still answers plain HTTP (tlsOrPlainListener).
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

// servingListener counts the serving port's connections by transport and,
// with a TLS configuration, serves TLS to clients that start a TLS
// handshake and plain HTTP to the others, on one port. Turning sidecar TLS
// on or off is then never a flag day: the manager tells the gateways to
// speak TLS (the Service's appProtocol) only once every replica can, and
// back to plain before replicas stop serving TLS, and in between both work;
// flint_sidecar_connections_total{transport} shows which one the gateways
// use.
type servingListener struct {
	net.Listener
	config *tls.Config // nil: plain HTTP only
	conns  *connCounters
}

// TCPListener lets the relay's event loops accept plain connections
// themselves (h1relay.TCPListenerWrapper); they count them with OnAccept.
func (l servingListener) TCPListener() *net.TCPListener {
	tl, _ := l.Listener.(*net.TCPListener)
	if l.config != nil {
		return nil
	}
	return tl
}

func (l servingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if l.config == nil {
		l.conns.plain.Inc()
		return c, nil
	}
	return &sniffConn{Conn: c, config: l.config, conns: l.conns}, nil
}

// sniffConn decides on its first Read, which the HTTP server makes under
// its header deadline: a TLS record starts with the handshake content type.
type sniffConn struct {
	net.Conn
	config *tls.Config
	conns  *connCounters
	inner  net.Conn // after the first Read: a *tls.Conn or the plain conn
}

const tlsHandshakeRecord = 0x16

func (c *sniffConn) Read(p []byte) (int, error) {
	if c.inner == nil {
		br := bufio.NewReaderSize(c.Conn, 1024)
		first, err := br.Peek(1)
		if err != nil {
			return 0, err
		}
		pc := &peekedConn{Conn: c.Conn, r: br}
		if first[0] == tlsHandshakeRecord {
			c.inner = tls.Server(pc, c.config)
			c.conns.tls.Inc()
		} else {
			c.inner = pc
			c.conns.plain.Inc()
		}
	}
	return c.inner.Read(p)
}

func (c *sniffConn) Write(p []byte) (int, error) {
	if c.inner == nil {
		return c.Conn.Write(p)
	}
	return c.inner.Write(p)
}

func (c *sniffConn) Close() error {
	if c.inner == nil {
		return c.Conn.Close()
	}
	return c.inner.Close()
}

// peekedConn reads first what the sniff buffered.
type peekedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *peekedConn) Read(p []byte) (int, error) { return c.r.Read(p) }
