package gateway

import (
	"flag"
	"fmt"
	"time"
)

// MCPConfig tunes protocol-aware routing of protocol: mcp and a2a agents
// (docs/mcp.md).
type MCPConfig struct {
	// SessionKeyFile holds the secrets MCP session ids are sealed with, one
	// per line, the first sealing (rotation: add a new first line, drop the
	// old one once its sessions are over). Every gateway instance that
	// serves the same clients needs the same file. Empty: a random key per
	// process, so sessions do not survive a gateway restart.
	SessionKeyFile string
	// SSEKeepAlive is how long an MCP or A2A event stream may stay silent
	// before the gateway sends an SSE comment, so load balancers and clients
	// with idle timeouts (often 60s) keep it open. 0 turns it off.
	SSEKeepAlive time.Duration
}

func defaultMCPConfig() MCPConfig {
	return MCPConfig{SSEKeepAlive: 15 * time.Second}
}

// RegisterFlags binds the MCP routing flags.
func (c *MCPConfig) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.SessionKeyFile, "session-key-file", c.SessionKeyFile,
		"file of secrets (one per line, >= 32 bytes, first seals) for MCP session ids; share it between gateway instances so sessions survive restarts (default: a random key per process)")
	fs.DurationVar(&c.SSEKeepAlive, "sse-keepalive", c.SSEKeepAlive,
		"send an SSE comment on MCP and A2A event streams silent this long, so idle timeouts of proxies and clients do not cut them; 0 = off")
}

func (c *MCPConfig) validate() error {
	if c.SSEKeepAlive < 0 {
		return fmt.Errorf("-sse-keepalive is %s: it must not be negative (0 turns keep-alives off)", c.SSEKeepAlive)
	}
	return nil
}
