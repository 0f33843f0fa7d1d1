// Package hostcheck guards a server that listens on loopback against DNS
// rebinding: a web page on a name of the attacker's that resolves to
// 127.0.0.1 reaches the server with its own name in Host, and a page
// elsewhere can send requests with its Origin. Both the gateway and the
// stdio bridge use it, so their rules are the same.
package hostcheck

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// Reasons a request is refused, as named in answers and metrics.
const (
	ReasonHost   = "HostNotAllowed"
	ReasonOrigin = "OriginNotAllowed"
)

// Policy decides which Host and Origin values a server accepts.
type Policy struct {
	on       bool
	any      bool
	names    map[string]bool
	suffixes []string // from *.example.com: ".example.com"
}

// New builds the policy of a server listening on listen, known to clients
// also as publicURL's host (may be empty), plus the allowed hosts given by
// the user (names, IPs, *.domain; "*" allows any). The check is on when the
// server listens on a loopback address, or when allowed hosts are given.
func New(listen, publicURL string, allowed []string) (*Policy, error) {
	p := &Policy{names: map[string]bool{}}
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		host = listen
	}
	p.on = isLoopbackName(host) || len(allowed) > 0
	p.add(host)
	if publicURL != "" {
		u, err := url.Parse(publicURL)
		if err != nil {
			return nil, fmt.Errorf("public URL %q: %w", publicURL, err)
		}
		p.add(u.Hostname())
	}
	for _, a := range allowed {
		a = strings.TrimSpace(a)
		switch {
		case a == "":
			continue
		case a == "*":
			p.any = true
		case strings.Contains(a, "/"):
			return nil, fmt.Errorf("allowed host %q: give a host name or IP, not a URL", a)
		case strings.HasPrefix(a, "*."):
			p.suffixes = append(p.suffixes, strings.ToLower(a[1:]))
		default:
			if h, _, err := net.SplitHostPort(a); err == nil {
				a = h
			}
			p.add(a)
		}
	}
	return p, nil
}

func (p *Policy) add(host string) {
	if host = strings.ToLower(strings.Trim(host, "[]")); host != "" {
		p.names[host] = true
	}
}

// On reports whether the policy checks anything.
func (p *Policy) On() bool { return p.on && !p.any }

// Check returns the reason and an explanation when r must be refused.
func (p *Policy) Check(r *http.Request) (reason string, err error) {
	return p.CheckHost(r.Host, r.Header.Get("Origin"))
}

// CheckHost is Check for a request's Host and Origin values ("" for none).
func (p *Policy) CheckHost(host, origin string) (reason string, err error) {
	if !p.On() {
		return "", nil
	}
	if name := hostname(host); host != "" && !p.allowed(name) {
		return ReasonHost, fmt.Errorf("Host %q is not a name of this server: it listens on loopback, where only localhost, loopback addresses and -allowed-hosts are accepted (a defense against DNS rebinding); add the name to -allowed-hosts if it is yours", host)
	}
	if origin != "" {
		u, err := url.Parse(origin)
		if err != nil || origin == "null" || u.Host == "" || !p.allowed(u.Hostname()) {
			return ReasonOrigin, errors.New("cross-site request refused: Origin " + origin + " is not this server; add its host to -allowed-hosts if it is yours")
		}
	}
	return "", nil
}

func (p *Policy) allowed(host string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if isLoopbackName(host) || p.names[host] {
		return true
	}
	for _, s := range p.suffixes {
		if strings.HasSuffix(host, s) {
			return true
		}
	}
	return false
}

// hostname is Host without its port.
func hostname(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return strings.Trim(h, "[]")
	}
	return strings.Trim(hostport, "[]")
}

// isLoopbackName reports whether host is localhost (or a name under
// .localhost, which resolvers must keep on loopback: RFC 6761) or a
// loopback IP.
func isLoopbackName(host string) bool {
	host = strings.ToLower(strings.Trim(host, "[]"))
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Names lists what the policy accepts besides loopback names, in the
// -allowed-hosts syntax, so a server behind this one (the stdio bridge
// behind the gateway, which passes Host on) can accept the same; "*" when
// the policy checks nothing.
func (p *Policy) Names() []string {
	if !p.On() {
		return []string{"*"}
	}
	var out []string
	for n := range p.names {
		out = append(out, n)
	}
	for _, s := range p.suffixes {
		out = append(out, "*"+s)
	}
	slices.Sort(out)
	return out
}
