package gateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/flint-dev/flint/internal/platform"
)

// codeSessionNotFound is the JSON-RPC error code MCP SDKs use for an
// unknown session (the spec fixes only the 404).
const codeSessionNotFound = -32001

// sessionNotFound is the answer for an MCP session the gateway cannot route:
// its token does not open, or its replica is gone. The spec's 404 tells the
// client to start a new session with initialize.
type sessionNotFound struct {
	agent  platform.AgentKey
	reason string
}

func errSessionNotFound(agent platform.AgentKey, reason string) *sessionNotFound {
	return &sessionNotFound{agent: agent, reason: reason}
}

func (e *sessionNotFound) Error() string {
	return fmt.Sprintf("MCP session of agent %s not found: %s", e.agent, e.reason)
}

// write answers 404 with a JSON-RPC error whose id is null: the gateway
// does not read the request body, and a null id keeps SDK clients from
// taking it as the answer to one call (the go-sdk, for one, then reports
// the session as missing and the application re-initializes).
func (e *sessionNotFound) write(w http.ResponseWriter) {
	body := map[string]any{
		"jsonrpc": "2.0",
		"id":      nil,
		"error": map[string]any{
			"code":    codeSessionNotFound,
			"message": "Session not found: " + e.reason + "; start a new session with initialize",
			"data":    map[string]string{"reason": "SessionNotFound", "agent": e.agent.String()},
		},
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusNotFound)
	_ = json.NewEncoder(w).Encode(body)
}

// proxyErrorHandler answers protocol errors in their protocol's shape and
// leaves every other failure to errorHandler.
func (g *Gateway) proxyErrorHandler(w http.ResponseWriter, r *http.Request, err error) {
	var snf *sessionNotFound
	if errors.As(err, &snf) {
		snf.write(w)
		return
	}
	g.errorHandler(w, r, err)
}
