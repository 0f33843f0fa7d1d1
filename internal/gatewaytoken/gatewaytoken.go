// Package gatewaytoken is the shared secret by which a sidecar recognises
// requests that came through the gateway. With it configured, a sidecar
// refuses traffic that bypasses the gateway (and so its authentication and
// limits) even where the network would let it through; the NetworkPolicy
// in the chart is the first line, this the second.
package gatewaytoken

import (
	"crypto/subtle"
	"fmt"
	"os"
	"strings"
)

// Header carries the token from the gateway to the sidecar. The sidecar
// removes it before the request reaches the agent.
const Header = "Flint-Gateway-Token"

// Read loads a token from a file (e.g. a mounted Secret), trimming white space.
func Read(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read gateway token: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if len(tok) < 16 {
		return "", fmt.Errorf("gateway token in %s is shorter than 16 characters: use a long random secret", path)
	}
	return tok, nil
}

// Equal compares a presented token with the expected one in constant time.
func Equal(presented, want string) bool {
	return subtle.ConstantTimeCompare([]byte(presented), []byte(want)) == 1
}
