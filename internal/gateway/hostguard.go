package gateway

import (
	"flag"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flint-dev/flint/internal/hostcheck"
)

// hostGuard refuses, on a gateway listening on loopback, requests whose
// Host is not one of its names and cross-site Origins (DNS rebinding:
// a web page could otherwise reach every local agent and the dashboard
// through `flint up`). The rules are internal/hostcheck's.
type hostGuard struct {
	policy  *hostcheck.Policy
	refused *prometheus.CounterVec
}

// registerHostFlags binds -allowed-hosts.
func (c *Config) registerHostFlags(fs *flag.FlagSet) {
	fs.Func("allowed-hosts", "comma-separated host names (or *.domain, or * for any) accepted in Host and Origin besides localhost, loopback addresses, -addr's host and -public-url's host; checked when -addr is a loopback address or this is set", func(v string) error {
		for _, h := range strings.Split(v, ",") {
			if h = strings.TrimSpace(h); h != "" {
				c.AllowedHosts = append(c.AllowedHosts, h)
			}
		}
		return nil
	})
}

func newHostGuard(cfg Config, reg prometheus.Registerer) (*hostGuard, error) {
	p, err := hostcheck.New(cfg.Addr, cfg.PublicURL, cfg.AllowedHosts)
	if err != nil {
		return nil, err
	}
	h := &hostGuard{policy: p, refused: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "flint_gateway_host_refused_total",
		Help: "Requests refused 403 because their Host or Origin is not this gateway's (DNS-rebinding protection), by reason.",
	}, []string{"reason"})}
	for _, r := range []string{hostcheck.ReasonHost, hostcheck.ReasonOrigin} {
		h.refused.WithLabelValues(r)
	}
	if reg != nil {
		if err := reg.Register(h.refused); err != nil {
			return nil, err
		}
	}
	return h, nil
}

// wrap puts the check in front of next; with the check off it is next.
func (h *hostGuard) wrap(next http.Handler) http.Handler {
	if h == nil || !h.policy.On() {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if reason, err := h.policy.Check(r); err != nil {
			h.refused.WithLabelValues(reason).Inc()
			(&gatewayError{status: http.StatusForbidden, reason: reason, message: err.Error()}).write(w)
			return
		}
		next.ServeHTTP(w, r)
	})
}
