package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// replica names this process in answers, so a client can see which
// replica served it (Flint sets FLINT_REPLICA; elsewhere the hostname).
func replica() string {
	if r := os.Getenv("FLINT_REPLICA"); r != "" {
		return r
	}
	h, _ := os.Hostname()
	return h
}

func newServer() *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: "flint-example-mcp-go", Version: "1.0.0"}, &mcp.ServerOptions{
		Instructions: "Example tools: greet, whoami, countdown (streams progress).",
	})
	mcp.AddTool(s, &mcp.Tool{Name: "greet", Description: "Say hello to someone"}, greet)
	mcp.AddTool(s, &mcp.Tool{Name: "whoami", Description: "Tell which replica, process and session serve this call"}, whoami)
	mcp.AddTool(s, &mcp.Tool{Name: "countdown", Description: "Count down to zero, one progress notification per step"}, countdown)
	return s
}

type greetIn struct {
	Name string `json:"name" jsonschema:"who to greet"`
}

type greetOut struct {
	Greeting string `json:"greeting"`
	Replica  string `json:"replica"`
}

func greet(_ context.Context, _ *mcp.CallToolRequest, in greetIn) (*mcp.CallToolResult, greetOut, error) {
	if in.Name == "" {
		in.Name = "world"
	}
	return nil, greetOut{Greeting: "Hello, " + in.Name + "!", Replica: replica()}, nil
}

type whoamiOut struct {
	Replica string `json:"replica"`
	PID     int    `json:"pid"`
	Session string `json:"session"`
}

func whoami(_ context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, whoamiOut, error) {
	return nil, whoamiOut{Replica: replica(), PID: os.Getpid(), Session: req.Session.ID()}, nil
}

type countdownIn struct {
	From       int `json:"from" jsonschema:"where to start counting (at most 1000)"`
	IntervalMs int `json:"intervalMs,omitempty" jsonschema:"milliseconds between steps (default 100)"`
}

type countdownOut struct {
	Message string `json:"message"`
	Replica string `json:"replica"`
}

// countdown sends its steps as progress notifications: over streamable HTTP
// they travel on the call's own event stream, ahead of its result.
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
				ProgressToken: token,
				Progress:      float64(in.From - i),
				Total:         float64(in.From),
				Message:       fmt.Sprintf("%d...", i),
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
	return nil, countdownOut{Message: "liftoff", Replica: replica()}, nil
}
