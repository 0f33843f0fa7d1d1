package controller

import (
	"testing"

	"github.com/flint-dev/flint/internal/secret"
)

// TestBypassProtected: sidecars refuse traffic that passed no gateway when
// the manager has a gateway token from a file or from its Secret, and only
// then (the manager tells the autoscaler so: docs/autoscaling.md).
func TestBypassProtected(t *testing.T) {
	var none Config
	fromFile := Config{GatewayTokenFile: "/etc/flint/gateway-token"}
	var fromSecret Config
	fromSecret.UseGatewayToken(func() secret.Tokens { return secret.Tokens{"t"} })
	var nilSecret Config
	nilSecret.UseGatewayToken(nil)
	for name, tc := range map[string]struct {
		cfg  Config
		want bool
	}{"no token": {none, false}, "token file": {fromFile, true}, "token Secret": {fromSecret, true}, "no Secret": {nilSecret, false}} {
		if got := tc.cfg.BypassProtected(); got != tc.want {
			t.Errorf("%s: BypassProtected %v, want %v", name, got, tc.want)
		}
	}
}
