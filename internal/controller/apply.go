package controller

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sync"

	"k8s.io/apimachinery/pkg/types"
)

// appliedRecord remembers the last apply of one object: what was sent and
// which version of the object it produced.
type appliedRecord struct {
	hash    string
	uid     types.UID
	version string
}

// applyMemo lets the reconciler skip an apply that would change nothing.
// Pods of an agent change status many times while it scales, and each
// change reconciles the Agent; without the memo each would cost two API
// writes (no-op applies, but the API server still does the work).
//
// An apply is skipped only when the desired object is unchanged and the
// cached object is still the exact version the last apply produced, so an
// edit by anyone else (which bumps the version) is reverted at once. After
// a restart the memo is empty and every object is applied once.
type applyMemo struct {
	mu      sync.Mutex
	records map[string]appliedRecord
}

func (m *applyMemo) key(kind string, nn types.NamespacedName) string {
	return kind + "/" + nn.String()
}

// upToDate reports whether an apply of desired (hashed) is unnecessary
// given the cached object's uid and version.
func (m *applyMemo) upToDate(key, hash string, uid types.UID, version string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.records[key]
	return ok && r.hash == hash && r.uid == uid && r.version == version
}

func (m *applyMemo) remember(key string, r appliedRecord) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.records == nil {
		m.records = map[string]appliedRecord{}
	}
	m.records[key] = r
}

// forget drops every record of an agent's objects, when the agent is gone.
func (m *applyMemo) forget(nn types.NamespacedName) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, kind := range []string{kindDeployment, kindService, kindSecret} {
		delete(m.records, m.key(kind, nn))
	}
}

// hashOf hashes an apply configuration. encoding/json sorts map keys, so
// equal configurations hash equally.
func hashOf(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("hash apply configuration: %w", err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}
