package session

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
)

// MinSecretLen is the shortest secret accepted: 32 bytes, e.g. the output
// of `openssl rand -base64 32` (44 characters).
const MinSecretLen = 32

// Keyring holds the secrets session tokens are sealed with: the first
// seals, all of them open. To rotate, put a new secret first and keep the
// old one below it until the sessions it sealed have ended.
type Keyring struct {
	keys []key
}

// NewKeyring derives a keyring from secrets, the sealing one first.
func NewKeyring(secrets ...[]byte) (*Keyring, error) {
	if len(secrets) == 0 {
		return nil, errors.New("session keyring: no secret given")
	}
	k := &Keyring{}
	for i, s := range secrets {
		if len(s) < MinSecretLen {
			return nil, fmt.Errorf("session secret %d is %d bytes: use at least %d random bytes (e.g. openssl rand -base64 32)", i+1, len(s), MinSecretLen)
		}
		dk, err := deriveKey(s)
		if err != nil {
			return nil, err
		}
		k.keys = append(k.keys, dk)
	}
	return k, nil
}

// LoadKeyring reads secrets from a file, one per line; blank lines and
// lines starting with # are ignored. A mounted Kubernetes Secret works as is.
func LoadKeyring(path string) (*Keyring, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read session key file: %w", err)
	}
	var secrets [][]byte
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		secrets = append(secrets, bytes.Clone(line))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read session key file %s: %w", path, err)
	}
	if len(secrets) == 0 {
		return nil, fmt.Errorf("session key file %s holds no secret: put at least %d random bytes on a line", path, MinSecretLen)
	}
	k, err := NewKeyring(secrets...)
	if err != nil {
		return nil, fmt.Errorf("session key file %s: %w", path, err)
	}
	return k, nil
}

// RandomKeyring returns a keyring with a fresh random secret. Tokens it
// seals die with the process: use it only when sessions need not survive a
// gateway restart and there is a single gateway.
func RandomKeyring() *Keyring {
	k, err := NewKeyring([]byte(rand.Text() + rand.Text()))
	if err != nil {
		panic(err) // unreachable: the secret is long enough and AES accepts the derived key
	}
	return k
}
