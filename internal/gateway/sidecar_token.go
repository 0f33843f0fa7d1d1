package gateway

import (
	"fmt"
	"log/slog"

	"github.com/flint-dev/flint/internal/reload"
	"github.com/flint-dev/flint/internal/secret"
)

// sidecarToken is the wire.HeaderGatewayToken value sent to sidecars. From
// -sidecar-token-file it follows the file: during a rotation the file holds
// two tokens, and the gateway sends the first while sidecars accept both
// (docs/operations.md), so no request is refused as the new token reaches
// the gateways and the sidecars at different moments.
type sidecarToken struct {
	static []string                // Config.SidecarToken; nil for none
	file   *reload.Value[[]string] // -sidecar-token-file; nil without it
}

func newSidecarToken(cfg Config, log *slog.Logger) (*sidecarToken, error) {
	t := &sidecarToken{}
	if cfg.SidecarToken != "" {
		t.static = []string{cfg.SidecarToken}
	}
	if cfg.SidecarTokenFile == "" {
		return t, nil
	}
	f, err := reload.File("gateway token", cfg.SidecarTokenFile, func(b []byte) ([]string, error) {
		tok, err := secret.ParseTokens(b, "gateway token in "+cfg.SidecarTokenFile)
		if err != nil {
			return nil, err
		}
		return []string{tok.Presented()}, nil // one header value per token, not per request
	}, log)
	if err != nil {
		return nil, fmt.Errorf("-sidecar-token-file: %w", err)
	}
	t.file = f
	return t, nil
}

// header is the value to send, nil for none.
func (t *sidecarToken) header() []string {
	if t.file != nil {
		return t.file.Get()
	}
	return t.static
}
