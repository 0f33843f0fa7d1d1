// Command mcp-stdio is Flint's example of an MCP server that speaks over
// stdin and stdout only, as most MCP servers written for desktop clients
// do. It is built on the official Go SDK's StdioTransport.
//
// Flint serves it over streamable HTTP through `flint stdio-bridge`, which
// agent.yaml asks for with the annotation flint.dev/mcp-transport: stdio;
// the bridge starts one copy of this program per MCP session. Run by hand,
// it reads JSON-RPC messages, one per line, from stdin:
//
//	(printf '%s\n' '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"sh","version":"0"}}}'; sleep 1) | go run .
//
// Tools: greet {name}, whoami, countdown {from, intervalMs} (progress
// notifications). It exits 0 when stdin closes, which is how the spec asks
// a client to stop a stdio server, and also on SIGTERM. Logs go to stderr;
// stdout carries MCP messages only.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	log.Info("serving MCP on stdio", "pid", os.Getpid())
	err := newServer().Run(ctx, &mcp.StdioTransport{})
	if err != nil && ctx.Err() == nil {
		log.Error("mcp-stdio failed", "err", err)
		os.Exit(1)
	}
	log.Info("stopped", "reason", reason(ctx))
}

func reason(ctx context.Context) string {
	if ctx.Err() != nil {
		return "signal"
	}
	return "stdin closed"
}

func newServer() *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: "flint-example-mcp-stdio", Version: "1.0.0"}, nil)
	mcp.AddTool(s, &mcp.Tool{Name: "greet", Description: "Say hello to someone"}, greet)
	mcp.AddTool(s, &mcp.Tool{Name: "whoami", Description: "Tell which process serves this session"}, whoami)
	mcp.AddTool(s, &mcp.Tool{Name: "countdown", Description: "Count down to zero, one progress notification per step"}, countdown)
	return s
}

type greetIn struct {
	Name string `json:"name" jsonschema:"who to greet"`
}

type greetOut struct {
	Greeting string `json:"greeting"`
}

func greet(_ context.Context, _ *mcp.CallToolRequest, in greetIn) (*mcp.CallToolResult, greetOut, error) {
	if in.Name == "" {
		in.Name = "world"
	}
	return nil, greetOut{Greeting: "Hello, " + in.Name + "!"}, nil
}

type whoamiOut struct {
	PID     int    `json:"pid"`
	Replica string `json:"replica"`
}

func whoami(context.Context, *mcp.CallToolRequest, struct{}) (*mcp.CallToolResult, whoamiOut, error) {
	return nil, whoamiOut{PID: os.Getpid(), Replica: os.Getenv("FLINT_REPLICA")}, nil
}

type countdownIn struct {
	From       int `json:"from" jsonschema:"where to start counting (at most 1000)"`
	IntervalMs int `json:"intervalMs,omitempty" jsonschema:"milliseconds between steps (default 100)"`
}

type countdownOut struct {
	Message string `json:"message"`
}

func countdown(ctx context.Context, req *mcp.CallToolRequest, in countdownIn) (*mcp.CallToolResult, countdownOut, error) {
	if in.From < 0 || in.From > 1000 {
		return nil, countdownOut{}, fmt.Errorf("from is %d: use 0 to 1000", in.From)
	}
	interval := time.Duration(in.IntervalMs) * time.Millisecond
	if interval <= 0 {
		interval = 100 * time.Millisecond
	}
	token := req.Params.GetProgressToken()
	for i := in.From; i > 0; i-- {
		if token != nil {
			err := req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{
				ProgressToken: token, Progress: float64(in.From - i), Total: float64(in.From), Message: fmt.Sprintf("%d...", i),
			})
			if err != nil {
				return nil, countdownOut{}, fmt.Errorf("send progress: %w", err)
			}
		}
		select {
		case <-time.After(interval):
		case <-ctx.Done():
			return nil, countdownOut{}, ctx.Err()
		}
	}
	return nil, countdownOut{Message: "liftoff"}, nil
}
