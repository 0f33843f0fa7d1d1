// Package secret reads the shared secrets Flint's processes prove
// themselves with (the gateway token a sidecar checks, the control token a
// gateway checks) and compares them in constant time; package reload
// follows the files they are mounted from.
package secret

import (
	"crypto/subtle"
	"fmt"
	"strings"
)

// MinLength is the shortest secret accepted: a long random one is expected.
const MinLength = 16

// Equal compares a presented secret with the expected one in constant time.
func Equal(presented, want string) bool {
	return subtle.ConstantTimeCompare([]byte(presented), []byte(want)) == 1
}

// Tokens is a shared secret as a file holds it during a rotation: one
// token per line, the first presented, every one accepted. A one-line file
// is the usual case; with two lines, both sides of a rotation are
// understood while it reaches every process (docs/operations.md).
type Tokens []string

// ParseTokens reads one token per line, ignoring blank lines and lines
// starting with #. what names the secret in errors, which never show a
// token.
func ParseTokens(data []byte, what string) (Tokens, error) {
	var t Tokens
	for n, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if len(line) < MinLength {
			return nil, fmt.Errorf("%s: line %d is shorter than %d characters: use a long random secret", what, n+1, MinLength)
		}
		t = append(t, line)
	}
	if len(t) == 0 {
		return nil, fmt.Errorf("%s holds no token: put a long random secret on a line", what)
	}
	return t, nil
}

// Presented is the token to send: the first.
func (t Tokens) Presented() string { return t[0] }

// Accepts reports whether presented is one of the tokens, in time that
// depends only on the number of tokens.
func (t Tokens) Accepts(presented string) bool {
	match := 0
	for _, want := range t {
		match |= subtle.ConstantTimeCompare([]byte(presented), []byte(want))
	}
	return match == 1
}
