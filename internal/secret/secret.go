// Package secret reads the shared secrets Flint's processes prove
// themselves with (the gateway token a sidecar checks, the control token a
// gateway checks) and compares them in constant time.
package secret

import (
	"crypto/subtle"
	"fmt"
	"os"
	"strings"
)

// MinLength is the shortest secret accepted: a long random one is expected.
const MinLength = 16

// Read loads a secret from a file (e.g. a mounted Secret), trimming white
// space. what names the secret in errors ("gateway token").
func Read(path, what string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", what, err)
	}
	tok := strings.TrimSpace(string(b))
	if len(tok) < MinLength {
		return "", fmt.Errorf("%s in %s is shorter than %d characters: use a long random secret", what, path, MinLength)
	}
	return tok, nil
}

// Equal compares a presented secret with the expected one in constant time.
func Equal(presented, want string) bool {
	return subtle.ConstantTimeCompare([]byte(presented), []byte(want)) == 1
}
