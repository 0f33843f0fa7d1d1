package session

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"time"
)

// MinSecretLen is the shortest secret accepted: 32 bytes, e.g. the output
// of `openssl rand -base64 32` (44 characters).
const MinSecretLen = 32

// Keyring holds the secrets session tokens are sealed with: the first
// seals, all of them open. To rotate, put a new secret first and keep the
// old one below it until the sessions it sealed have ended. A keyring
// loaded from a file follows the file (Watch), so a rotation written to a
// mounted Secret needs no restart.
type Keyring struct {
	keys atomic.Pointer[[]key]
	path string // the file it was loaded from; empty for none
	data []byte // that file's content when last read, for Watch only
}

// current is the keys in use: the first seals, all open.
func (k *Keyring) current() []key { return *k.keys.Load() }

// NewKeyring derives a keyring from secrets, the sealing one first.
func NewKeyring(secrets ...[]byte) (*Keyring, error) {
	if len(secrets) == 0 {
		return nil, errors.New("session keyring: no secret given")
	}
	var keys []key
	for i, s := range secrets {
		if len(s) < MinSecretLen {
			return nil, fmt.Errorf("session secret %d is %d bytes: use at least %d random bytes (e.g. openssl rand -base64 32)", i+1, len(s), MinSecretLen)
		}
		dk, err := deriveKey(s)
		if err != nil {
			return nil, err
		}
		keys = append(keys, dk)
	}
	k := &Keyring{}
	k.keys.Store(&keys)
	return k, nil
}

// LoadKeyring reads secrets from a file, one per line; blank lines and
// lines starting with # are ignored. A mounted Kubernetes Secret works as is.
func LoadKeyring(path string) (*Keyring, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read session key file: %w", err)
	}
	k, err := parseKeyring(path, data)
	if err != nil {
		return nil, err
	}
	k.path, k.data = path, data
	return k, nil
}

func parseKeyring(path string, data []byte) (*Keyring, error) {
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

// WatchInterval is how often a keyring loaded from a file checks it. The
// kubelet takes up to a minute or two to update a mounted Secret anyway.
const WatchInterval = 10 * time.Second

// Watch re-reads the keyring's file every interval until ctx ends and
// switches to its secrets when they change. A file that cannot be read or
// holds no valid secret is logged and ignored: the keys in use stay, so a
// half-written rotation never breaks sessions. A keyring not loaded from a
// file returns at once.
func (k *Keyring) Watch(ctx context.Context, interval time.Duration, log *slog.Logger) {
	if k.path == "" {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		k.reload(log)
	}
}

// reload switches to the file's secrets when its content changed.
func (k *Keyring) reload(log *slog.Logger) {
	data, err := os.ReadFile(k.path)
	if err != nil {
		log.Error("session keys: cannot re-read the key file; keeping the keys in use", "file", k.path, "err", err)
		return
	}
	if bytes.Equal(data, k.data) {
		return
	}
	next, err := parseKeyring(k.path, data)
	if err != nil {
		log.Error("session keys: the key file changed but is not valid; keeping the keys in use", "err", err)
		return
	}
	k.data = data
	k.keys.Store(next.keys.Load())
	log.Info("session keys reloaded", "file", k.path, "keys", len(next.current()))
}
