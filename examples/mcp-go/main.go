// Command mcp-go is Flint's example MCP server, built on the official Go SDK
// (github.com/modelcontextprotocol/go-sdk) and served over streamable HTTP.
//
// It listens on $HOST:$PORT (default 127.0.0.1:8082, not 8080, which is `flint up`'s gateway) and serves:
//
//	/mcp      the MCP endpoint, for both protocol eras: requests of version
//	          2026-07-28 or later are stateless (any replica may answer),
//	          older clients get a session (Mcp-Session-Id) that Flint's
//	          gateway keeps on the replica that issued it
//	/healthz  200 "ok" (readiness)
//
// Tools:
//
//	greet {name}                    a greeting, with the replica that answered
//	whoami                          the replica, process and session serving the call
//	countdown {from, intervalMs}    counts down, sending a progress notification
//	                                per step when the caller asks for progress
//
// On SIGTERM or SIGINT it ends its open session streams (clients reconnect
// elsewhere), stops accepting, lets calls in flight finish within 10s and
// exits 0 (1 if it had to cut calls off) — never the 143 of dying by signal.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

const shutdownTimeout = 10 * time.Second

func main() {
	helpAndExit("mcp-go", "8082")
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	addr := net.JoinHostPort(envOr("HOST", "127.0.0.1"), envOr("PORT", "8082"))
	if err := run(ctx, addr, log); err != nil {
		log.Error("mcp-go failed", "err", err)
		os.Exit(1)
	}
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// run serves until ctx is done, then shuts down gracefully.
func run(ctx context.Context, addr string, log *slog.Logger) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	streamsDone, endStreams := context.WithCancel(context.Background())
	defer endStreams()
	srv := &http.Server{
		Handler:           newHandler(newServer(), streamsDone),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	log.Info("listening", "addr", ln.Addr().String(), "mcp", "/mcp", "pid", os.Getpid())

	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down: ending session streams, finishing calls in flight")
	// Session streams (GET) never end on their own; Shutdown would wait for
	// them until its deadline. Ended cleanly, clients reconnect elsewhere.
	endStreams()
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
		return errors.New("calls still in flight at the shutdown deadline were cut off")
	}
	log.Info("stopped")
	return nil
}

// newHandler serves MCP at /mcp for both protocol eras, and /healthz.
func newHandler(server *mcp.Server, streamsDone context.Context) http.Handler {
	getServer := func(*http.Request) *mcp.Server { return server }
	// The gateway keeps the client's Host header; behind a gateway the
	// SDK's DNS-rebinding check (loopback listener, foreign Host) would
	// refuse every request, and the gateway is what faces clients.
	legacy := mcp.NewStreamableHTTPHandler(getServer, &mcp.StreamableHTTPOptions{
		DisableLocalhostProtection: true,
		SessionTimeout:             30 * time.Minute, // clients that never DELETE their session
	})
	modern := mcp.NewStreamableHTTPHandler(getServer, &mcp.StreamableHTTPOptions{
		Stateless:                  true,
		DisableLocalhostProtection: true,
	})
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	mux.Handle("/mcp", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Mcp-Protocol-Version") >= "2026-07-28" {
			modern.ServeHTTP(w, r)
			return
		}
		if r.Method == http.MethodGet {
			// A session stream: tie it to streamsDone, so shutdown can end
			// streams without cancelling the calls still in flight.
			ctx, cancel := context.WithCancel(r.Context())
			defer cancel()
			defer context.AfterFunc(streamsDone, cancel)()
			r = r.WithContext(ctx)
		}
		legacy.ServeHTTP(w, r)
	}))
	return mux
}

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
