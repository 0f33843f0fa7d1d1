// Command a2a is Flint's example A2A agent: a minimal agent that speaks the
// A2A protocol's JSON-RPC binding (version 0.3) and echoes what it is told.
//
// It listens on $HOST:$PORT (default 127.0.0.1:8083, not 8080, which is `flint up`'s gateway) and serves:
//
//	GET  /.well-known/agent-card.json   its agent card (also at the 0.2 path
//	                                    /.well-known/agent.json); the card
//	                                    names this process's own address,
//	                                    which Flint's gateway rewrites to its own
//	POST /                              JSON-RPC: message/send answers with one
//	                                    message; message/stream answers with
//	                                    Server-Sent Events: the task, its
//	                                    status, the echo word by word, and
//	                                    the final status
//	GET  /healthz                       200 "ok"
//
// On SIGTERM or SIGINT it stops accepting, lets streams in flight finish
// within 10s and exits 0 (1 if it had to cut them off).
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

const shutdownTimeout = 10 * time.Second

func main() {
	helpAndExit("a2a", "8083")
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	addr := net.JoinHostPort(envOr("HOST", "127.0.0.1"), envOr("PORT", "8083"))
	if err := run(ctx, addr, log); err != nil {
		log.Error("a2a failed", "err", err)
		os.Exit(1)
	}
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func run(ctx context.Context, addr string, log *slog.Logger) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           newHandler("http://"+ln.Addr().String(), log),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	log.Info("listening", "addr", ln.Addr().String(), "pid", os.Getpid())
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down: finishing streams in flight")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
		return errors.New("streams still in flight at the shutdown deadline were cut off")
	}
	log.Info("stopped")
	return nil
}

func newHandler(self string, log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	card := agentCard(self)
	mux.HandleFunc("GET /.well-known/agent-card.json", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, card) })
	mux.HandleFunc("GET /.well-known/agent.json", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, card) })
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	mux.HandleFunc("POST /{$}", func(w http.ResponseWriter, r *http.Request) { serveJSONRPC(w, r, log) })
	return mux
}

// agentCard describes the agent (A2A 0.3 fields). Its url is where this
// process listens; clients behind Flint see the gateway's URL instead.
func agentCard(self string) map[string]any {
	return map[string]any{
		"protocolVersion":    "0.3.0",
		"name":               "Flint echo agent",
		"description":        "Echoes every message back; streams the echo word by word.",
		"url":                self + "/",
		"preferredTransport": "JSONRPC",
		"additionalInterfaces": []map[string]string{
			{"url": self + "/", "transport": "JSONRPC"},
		},
		"version":            "1.0.0",
		"capabilities":       map[string]bool{"streaming": true, "pushNotifications": false},
		"defaultInputModes":  []string{"text/plain"},
		"defaultOutputModes": []string{"text/plain"},
		"skills": []map[string]any{{
			"id": "echo", "name": "Echo", "description": "Repeats the text it is sent.",
			"tags": []string{"echo", "example"}, "examples": []string{"hello there"},
		}},
	}
}

func newID() string { return rand.Text() }

// helpAndExit answers -h and --help (and refuses other arguments): the
// example is configured by environment variables only.
func helpAndExit(name, port string) {
	if len(os.Args) < 2 {
		return
	}
	code := 0
	if a := os.Args[1]; a != "-h" && a != "-help" && a != "--help" {
		fmt.Fprintf(os.Stderr, "%s: unexpected argument %q\n", name, a)
		code = 2
	}
	fmt.Fprintf(os.Stderr, "Usage: %s (no arguments)\n\nFlint's example agent %s. Environment:\n  HOST  address to listen on (default 127.0.0.1)\n  PORT  port to listen on (default %s; flint up sets it per replica)\n", name, name, port)
	os.Exit(code)
}
