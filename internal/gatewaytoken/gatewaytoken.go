// Package gatewaytoken is the shared secret by which a sidecar recognises
// requests that came through the gateway. With it configured, a sidecar
// refuses traffic that bypasses the gateway (and so its authentication and
// limits) even where the network would let it through; the NetworkPolicy
// in the chart is the first line, this the second.
package gatewaytoken

import "github.com/flint-dev/flint/internal/secret"

// The token travels in wire.HeaderGatewayToken.

// A file holds it as secret.Tokens: during a rotation, the gateways send
// the first line and sidecars accept every line.

// Equal compares a presented token with the expected one in constant time.
func Equal(presented, want string) bool { return secret.Equal(presented, want) }
