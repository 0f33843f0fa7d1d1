package gateway

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"time"
)

// upstreamTLS dials sidecars that serve TLS. The gateway connects to a
// pod's IP, but certificates name the agent's Service
// (NAME.NAMESPACE.svc.DOMAIN), so the TLS server name (SNI and
// verification) is the endpoint's, not the address dialled.
//
// Both travel in the request URL's host as "IP.SERVERNAME:PORT", the IP's
// dots or colons written as dashes (10-244-1-5.echo.ns.svc.cluster.local,
// the shape of Kubernetes' pod DNS names). The transport pools connections
// by that host, so a connection is reused only for the same pod under the
// same name, with no table to keep in step with endpoints.
type upstreamTLS struct {
	dialer *net.Dialer
	caFile string
	now    func() time.Time

	mu      sync.Mutex
	config  *tls.Config // RootCAs; ServerName is set per connection
	caPEM   []byte
	checked time.Time
}

// caReloadInterval is how often, at most, -upstream-ca-file is read again
// (on a dial): a mounted CA bundle ConfigMap changes when the CA is
// rotated, and the gateway follows without a restart.
const caReloadInterval = 10 * time.Second

// newUpstreamTLS trusts the system's roots plus the PEM certificates in
// caFile (when set), e.g. the CA bundle of the sidecars' certificates.
func newUpstreamTLS(dialer *net.Dialer, caFile string) (*upstreamTLS, error) {
	u := &upstreamTLS{dialer: dialer, caFile: caFile, now: time.Now}
	if err := u.load(); err != nil {
		return nil, err
	}
	return u, nil
}

// load reads caFile when it changed; the caller holds mu or owns u.
func (u *upstreamTLS) load() error {
	u.checked = u.now()
	var pem []byte
	if u.caFile != "" {
		var err error
		if pem, err = os.ReadFile(u.caFile); err != nil {
			return fmt.Errorf("-upstream-ca-file: %w", err)
		}
	}
	if u.config != nil && bytes.Equal(pem, u.caPEM) {
		return nil
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if u.caFile != "" && !pool.AppendCertsFromPEM(pem) {
		return fmt.Errorf("-upstream-ca-file %s holds no PEM certificate", u.caFile)
	}
	u.config, u.caPEM = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, pem
	return nil
}

// current is the configuration for a new connection. A CA file that
// cannot be read or holds nothing keeps the trust the gateway had.
func (u *upstreamTLS) current() *tls.Config {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.caFile != "" && u.now().Sub(u.checked) >= caReloadInterval {
		_ = u.load()
	}
	return u.config
}

// tlsHost is the URL host for an endpoint at addr verified as serverName.
func tlsHost(addr, serverName string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr // not host:port: the dial fails with the reason
	}
	label := strings.NewReplacer(".", "-", ":", "-").Replace(host)
	return net.JoinHostPort(label+"."+serverName, port)
}

// splitTLSHost undoes tlsHost.
func splitTLSHost(addr string) (dial, serverName string, err error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", "", err
	}
	label, serverName, ok := strings.Cut(host, ".")
	if !ok || serverName == "" {
		return "", "", fmt.Errorf("%s does not name a replica and its TLS server name", addr)
	}
	ip := net.ParseIP(strings.ReplaceAll(label, "-", "."))
	if ip == nil || ip.To4() == nil {
		ip = net.ParseIP(strings.ReplaceAll(label, "-", ":"))
	}
	if ip == nil {
		return "", "", fmt.Errorf("%s does not start with a replica's IP", addr)
	}
	return net.JoinHostPort(ip.String(), port), serverName, nil
}

// dialTLS is the transport's DialTLSContext.
func (u *upstreamTLS) dialTLS(ctx context.Context, network, addr string) (net.Conn, error) {
	dial, name, err := splitTLSHost(addr)
	if err != nil {
		return nil, fmt.Errorf("dial TLS replica: %w", err)
	}
	conn, err := u.dialer.DialContext(ctx, network, dial)
	if err != nil {
		return nil, err
	}
	cfg := u.current().Clone()
	cfg.ServerName = name
	tc := tls.Client(conn, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("TLS handshake with %s as %s: %w", dial, name, err)
	}
	return tc, nil
}
