package demand

import (
	"log/slog"
	"strings"

	"github.com/flint-dev/flint/internal/platform"
	"github.com/flint-dev/flint/internal/reload"
	"github.com/flint-dev/flint/internal/secret"
	"github.com/flint-dev/flint/internal/wire"
)

// Paths on a gateway's control port.
const (
	DemandPath = "/v1/demand"
	PokesPath  = "/v1/pokes"
)

// Record is one agent's demand as one gateway counts it: the counts of
// wire.Demand, which the gateway knows by key, with the key written out for
// the wire.
type Record struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	wire.Demand
}

// Snapshot is a gateway's answer to GET /v1/demand.
type Snapshot struct {
	// Instance changes when the gateway restarts, and with it every total.
	Instance string   `json:"instance"`
	Agents   []Record `json:"agents"`
}

func (r Record) key() platform.AgentKey {
	return platform.AgentKey{Namespace: r.Namespace, Name: r.Name}
}

// RecordOf builds the record of key from a gateway's counts.
func RecordOf(key platform.AgentKey, d wire.Demand) Record {
	return Record{Namespace: key.Namespace, Name: key.Name, Demand: d}
}

// WatchToken loads the shared control token from a file (a mounted
// Secret) and follows it: one token per line during a rotation, the first
// presented, every one accepted (docs/operations.md).
func WatchToken(path string, log *slog.Logger) (*reload.Value[secret.Tokens], error) {
	return reload.Tokens("control token", path, log)
}

// authorized checks "Authorization: Bearer TOKEN" in constant time.
func authorized(header string, tokens secret.Tokens) bool {
	presented, ok := strings.CutPrefix(header, "Bearer ")
	return ok && tokens.Accepts(presented)
}
