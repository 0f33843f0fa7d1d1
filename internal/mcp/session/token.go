// Package session turns an MCP session's route (which replica issued it,
// and that replica's own session id) into the opaque session id the gateway
// hands the client, and back. The route travels inside the id, sealed with
// AES-256-GCM, so any gateway instance holding the key can route a session
// with no shared store, and a client can neither read nor forge a route.
//
// Token layout (base64url without padding, so it is visible ASCII as the
// MCP spec requires of session ids):
//
//	version (1 byte) | nonce (12 bytes) | AES-256-GCM(route) with its 16-byte tag
//
// The additional data is the version byte and a scope (the agent's
// namespace/name), so a token minted for one agent opens for no other.
// The nonce is derived from the sealed content with HMAC-SHA256 (a
// synthetic IV): the same route always gives the same token, so a client
// that compares session ids across responses sees a stable one, and a
// nonce repeats only when the whole input does.
package session

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// Route is where a session lives.
type Route struct {
	// Addr is the replica's endpoint (its sidecar's serving host:port).
	Addr string
	// Replica is the replica's name; with Addr it tells a replica from a
	// later one that reuses its address.
	Replica string
	// UpstreamID is the session id the replica itself issued.
	UpstreamID string
}

const (
	version   = 1
	nonceSize = 12
	// MaxTokenLen bounds what Open will decode, so a hostile header costs
	// nothing; real tokens are around 100-200 characters.
	MaxTokenLen = 4096
)

// ErrInvalid is returned for any token that does not open: malformed,
// forged, sealed with an unknown key or for another scope. Callers answer
// it like an unknown session (404), which makes the client re-initialize.
var ErrInvalid = errors.New("invalid session token")

var encoding = base64.RawURLEncoding.Strict() // strict: one token per route, no malleable padding bits

// Seal returns the token for r in scope, sealed with the keyring's first key.
func (k *Keyring) Seal(scope string, r Route) string {
	key := k.current()[0]
	aad := additionalData(scope)
	plain := encodeRoute(r)
	mac := hmac.New(sha256.New, key.nonceKey)
	mac.Write(aad)
	mac.Write(plain)
	nonce := mac.Sum(nil)[:nonceSize]

	out := make([]byte, 0, 1+nonceSize+len(plain)+key.aead.Overhead())
	out = append(out, version)
	out = append(out, nonce...)
	out = key.aead.Seal(out, nonce, plain, aad)
	return encoding.EncodeToString(out)
}

// Open returns the route sealed in token for scope, trying every key of the
// keyring so tokens sealed before a key rotation keep working.
func (k *Keyring) Open(scope, token string) (Route, error) {
	// base64 decoding skips \r and \n even when strict, so a token with
	// them inserted would open like the real one: one route, one token.
	if len(token) > MaxTokenLen || strings.ContainsAny(token, "\r\n") {
		return Route{}, ErrInvalid
	}
	raw, err := encoding.DecodeString(token)
	if err != nil || len(raw) < 1+nonceSize || raw[0] != version {
		return Route{}, ErrInvalid
	}
	nonce, sealed := raw[1:1+nonceSize], raw[1+nonceSize:]
	aad := additionalData(scope)
	for _, key := range k.current() {
		plain, err := key.aead.Open(nil, nonce, sealed, aad)
		if err != nil {
			continue
		}
		r, err := decodeRoute(plain)
		if err != nil {
			return Route{}, ErrInvalid
		}
		return r, nil
	}
	return Route{}, ErrInvalid
}

func additionalData(scope string) []byte {
	return append([]byte{version}, scope...)
}

// encodeRoute lays r out as two length-prefixed fields and the rest.
func encodeRoute(r Route) []byte {
	b := make([]byte, 0, 2*binary.MaxVarintLen64+len(r.Addr)+len(r.Replica)+len(r.UpstreamID))
	b = binary.AppendUvarint(b, uint64(len(r.Addr)))
	b = append(b, r.Addr...)
	b = binary.AppendUvarint(b, uint64(len(r.Replica)))
	b = append(b, r.Replica...)
	return append(b, r.UpstreamID...)
}

func decodeRoute(b []byte) (Route, error) {
	var fields [2]string
	for i := range fields {
		n, used := binary.Uvarint(b)
		if used <= 0 || n > uint64(len(b)-used) {
			return Route{}, errors.New("truncated route")
		}
		fields[i] = string(b[used : used+int(n)])
		b = b[used+int(n):]
	}
	return Route{Addr: fields[0], Replica: fields[1], UpstreamID: string(b)}, nil
}

// key is one secret's derived keys: separate keys for encryption and for
// the synthetic nonce, so neither use can weaken the other.
type key struct {
	aead     cipher.AEAD
	nonceKey []byte
}

func deriveKey(secret []byte) (key, error) {
	derive := func(label string) []byte {
		m := hmac.New(sha256.New, secret)
		m.Write([]byte(label))
		return m.Sum(nil)
	}
	block, err := aes.NewCipher(derive("flint mcp session v1 encryption"))
	if err != nil {
		return key{}, fmt.Errorf("session key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return key{}, fmt.Errorf("session key: %w", err)
	}
	return key{aead: aead, nonceKey: derive("flint mcp session v1 nonce")}, nil
}
