package bridge

import (
	"encoding/json"
	"flag"
	"net/http"
	"strings"
)

// The bridge's own defense against DNS rebinding, for when it is reached
// without the gateway (run by hand, or its port found by a web page): on
// loopback it accepts only its own names in Host and same-site Origins
// (internal/hostcheck, the gateway's rules). Behind `flint up` the local
// runtime passes the gateway's accepted names on, since Host travels
// through the gateway and the sidecar unchanged.

// registerGuardFlags binds -allowed-hosts.
func (c *Config) registerGuardFlags(fs *flag.FlagSet) {
	fs.Func("allowed-hosts", "comma-separated host names (or *.domain, or * for any) accepted in Host and Origin besides localhost, loopback addresses and -listen's host; checked when -listen is a loopback address or this is set", func(v string) error {
		for _, h := range strings.Split(v, ",") {
			if h = strings.TrimSpace(h); h != "" {
				c.AllowedHosts = append(c.AllowedHosts, h)
			}
		}
		return nil
	})
}

// guard answers 403 with a JSON body naming the reason when r must be
// refused, and reports whether it did.
func (b *Bridge) guard(w http.ResponseWriter, r *http.Request) bool {
	reason, err := b.hosts.Check(r)
	if err == nil {
		return false
	}
	b.metrics.refused.WithLabelValues(reason).Inc()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusForbidden)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error(), "reason": reason})
	return true
}
