package proxy

import (
	"fmt"
	"log/slog"

	"github.com/flint-dev/flint/internal/gatewaytoken"
	"github.com/flint-dev/flint/internal/reload"
	"github.com/flint-dev/flint/internal/secret"
)

// gatewayToken decides whether a request came through the gateway. From
// -gateway-token-file it follows the file (a mounted copy of the gateway
// token that the manager keeps up to date): during a rotation the file
// holds the old and the new token and both are accepted, so gateways that
// switch at different moments are never refused.
type gatewayToken struct {
	static string                       // Config.GatewayToken
	file   *reload.Value[secret.Tokens] // nil without a file
}

func newGatewayToken(cfg Config, log *slog.Logger) (gatewayToken, error) {
	t := gatewayToken{static: cfg.GatewayToken}
	if cfg.GatewayTokenFile != "" {
		f, err := reload.Tokens("gateway token", cfg.GatewayTokenFile, log)
		if err != nil {
			return t, fmt.Errorf("-gateway-token-file: %w", err)
		}
		t.file = f
	}
	return t, nil
}

// accepts reports whether a request presenting this token may pass; with
// no token configured, every request may.
func (t gatewayToken) accepts(presented string) bool {
	switch {
	case t.file != nil:
		return t.file.Get().Accepts(presented)
	case t.static != "":
		return gatewaytoken.Equal(presented, t.static)
	}
	return true
}
