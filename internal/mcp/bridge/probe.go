package bridge

import (
	"context"
	"fmt"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	flintmcp "github.com/flint-dev/flint/internal/mcp"
)

// probeRetry is the pause between failed readiness probes.
const probeRetry = 2 * time.Second

// probeUntilReady marks the bridge ready once a probe child has been
// started and has completed the MCP handshake, retrying until then. A
// bridge whose command is missing, crashes, or does not speak MCP thus
// never turns ready, and the platform shows it instead of routing sessions
// into errors. The probe child is stopped like any other, so an expensive
// server costs one extra start per bridge, not per session.
func (b *Bridge) probeUntilReady(ctx context.Context) {
	for attempt := 1; ; attempt++ {
		start := time.Now()
		err := b.probe(ctx)
		if err == nil {
			b.ready.Store(true)
			b.log.Info("ready: the MCP server answered initialize", "took", time.Since(start).Round(time.Millisecond))
			return
		}
		if ctx.Err() != nil {
			return
		}
		b.log.Warn("readiness probe failed; retrying", "attempt", attempt, "in", probeRetry, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(probeRetry):
		}
	}
}

// probe starts a child, initializes an MCP session with it over the SDK's
// client, and stops it.
func (b *Bridge) probe(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, b.cfg.StartTimeout)
	defer cancel()
	c, err := b.startChild(ctx, "probe")
	if err != nil {
		return err
	}
	client := mcp.NewClient(&mcp.Implementation{Name: "flint-stdio-bridge-probe", Version: "1"}, nil)
	// A session-era initialize: every stdio server speaks it, while the
	// stateless era's discovery request is newer than many.
	cs, err := client.Connect(ctx, &connectedTransport{c.conn}, &mcp.ClientSessionOptions{ProtocolVersion: flintmcp.LegacyVersions[0]})
	if err != nil {
		status, _ := c.stop()
		return fmt.Errorf("initialize %q (child %s): %w", b.argv[0], status, err)
	}
	_ = cs.Close() // closes the connection: the child stops in the spec's order
	status, took := c.stop()
	b.log.Debug("probe child stopped", "child", status, "took", took.Round(time.Millisecond))
	return nil
}

// connectedTransport hands the SDK client a connection that already exists,
// so the child's process stays the bridge's to stop (and account for).
type connectedTransport struct{ conn mcp.Connection }

func (t *connectedTransport) Connect(context.Context) (mcp.Connection, error) { return t.conn, nil }
