package upgrade

import (
	"net/http"
	"testing"
)

func TestInvalid(t *testing.T) {
	for _, tc := range []struct {
		conn, upgrade string
		protocol      string
		invalid       bool
	}{
		{conn: "Upgrade", upgrade: "websocket", protocol: "websocket"},
		{conn: "keep-alive, UpgrAde", upgrade: "h2c", protocol: "h2c"},
		{conn: "keep-alive", upgrade: "\x94"}, // not an upgrade: ReverseProxy drops the header
		{conn: "", upgrade: "websocket"},
		{conn: "Upgrade", upgrade: "\x94", protocol: "\x94", invalid: true},
		{conn: "upgrade", upgrade: "web\x7fsocket", protocol: "web\x7fsocket", invalid: true},
		{conn: "Upgrade", upgrade: "", protocol: ""},
	} {
		h := http.Header{}
		if tc.conn != "" {
			h.Set("Connection", tc.conn)
		}
		h["Upgrade"] = []string{tc.upgrade}
		if got := Protocol(h); got != tc.protocol {
			t.Errorf("Protocol(Connection %q, Upgrade %q) = %q, want %q", tc.conn, tc.upgrade, got, tc.protocol)
		}
		if got := Invalid(h); got != tc.invalid {
			t.Errorf("Invalid(Connection %q, Upgrade %q) = %v, want %v", tc.conn, tc.upgrade, got, tc.invalid)
		}
	}
}
