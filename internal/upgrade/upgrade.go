// Package upgrade checks protocol-switch requests (Connection: upgrade)
// before they reach httputil.ReverseProxy, which answers an upgrade to a
// protocol name that is not printable ASCII as its own failure, 502, when
// the caller is at fault and should get 400. The gateway and the sidecar
// both proxy with ReverseProxy, so both check.
package upgrade

import (
	"net/http"

	"golang.org/x/net/http/httpguts"
)

// Protocol is the protocol a request asks to switch to, read as
// ReverseProxy reads it: Upgrade, when Connection lists "upgrade".
func Protocol(h http.Header) string {
	if !httpguts.HeaderValuesContainsToken(h["Connection"], "Upgrade") {
		return ""
	}
	return h.Get("Upgrade")
}

// Invalid reports whether h asks to switch to a protocol ReverseProxy
// would refuse.
func Invalid(h http.Header) bool {
	p := Protocol(h)
	for i := 0; i < len(p); i++ {
		if p[i] < 0x20 || p[i] > 0x7e {
			return true
		}
	}
	return false
}
