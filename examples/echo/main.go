// Command echo is Flint's example HTTP agent and the workhorse of its tests.
//
// It listens on $HOST:$PORT (default 127.0.0.1:8081, not 8080, which is `flint up`'s gateway; PORT=0 picks a free
// port, logged at start) and serves:
//
//	GET  /healthz                      200 "ok"
//	GET  /sse?n=5&interval=100ms       n Server-Sent Events `data: {"i":k}`, each flushed
//	ANY  /any/path?sleep=250ms&status=201
//	                                   echoes method, path, query, headers and body as JSON
//
// sleep (a Go duration) delays the answer of the echo and SSE endpoints and
// gives up when the client goes away; status sets the echo's status code.
// On SIGTERM or SIGINT it stops accepting, finishes in-flight requests
// within 10s and exits 0 (1 if it had to cut requests off).
package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"
	"unicode/utf8"
)

const (
	shutdownTimeout = 10 * time.Second
	maxBody         = 10 << 20
	maxSleep        = 10 * time.Minute
	maxEvents       = 100_000
)

func main() {
	helpAndExit("echo", "8081")
	level := slog.LevelInfo
	if os.Getenv("LOG_LEVEL") == "debug" {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	addr := net.JoinHostPort(envOr("HOST", "127.0.0.1"), envOr("PORT", "8081"))
	if err := run(ctx, addr, log); err != nil {
		log.Error("echo failed", "err", err)
		os.Exit(1)
	}
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// run serves on addr until ctx is done, then drains.
func run(ctx context.Context, addr string, log *slog.Logger) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           newHandler(log, ln.Addr().String()),
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
	log.Info("shutting down: finishing in-flight requests", "timeout", shutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
		return fmt.Errorf("requests still running after %s were cut off: %w", shutdownTimeout, err)
	}
	log.Info("stopped")
	return nil
}

// newHandler serves the agent's endpoints; addr is reported in echoes so
// tests can tell replicas apart.
func newHandler(log *slog.Logger, addr string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /sse", func(w http.ResponseWriter, r *http.Request) {
		if sleep(w, r) {
			serveSSE(w, r)
		}
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if sleep(w, r) {
			serveEcho(w, r, addr)
		}
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		mux.ServeHTTP(w, r)
		log.Debug("request", "method", r.Method, "path", r.URL.Path, "took", time.Since(start))
	})
}

// echo is the JSON answer of the echo endpoint.
type echo struct {
	Method  string              `json:"method"`
	Path    string              `json:"path"`
	Query   map[string][]string `json:"query"`
	Headers map[string][]string `json:"headers"`
	Host    string              `json:"host"`
	Proto   string              `json:"proto"`
	// Body is the request body; a body that is not UTF-8 is in BodyBase64 instead.
	Body       string `json:"body"`
	BodyBase64 string `json:"bodyBase64,omitempty"`
	// PID and Addr identify the replica that answered.
	PID  int    `json:"pid"`
	Addr string `json:"addr"`
}

func serveEcho(w http.ResponseWriter, r *http.Request, addr string) {
	status := http.StatusOK
	if s := r.URL.Query().Get("status"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 200 || n > 599 {
			httpError(w, http.StatusBadRequest, "status must be an HTTP status code from 200 to 599")
			return
		}
		status = n
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			httpError(w, http.StatusRequestEntityTooLarge, "body larger than 10 MiB")
		}
		return // otherwise the client went away
	}
	e := echo{
		Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), Headers: r.Header,
		Host: r.Host, Proto: r.Proto, PID: os.Getpid(), Addr: addr,
	}
	if utf8.Valid(body) {
		e.Body = string(body)
	} else {
		e.BodyBase64 = base64.StdEncoding.EncodeToString(body)
	}
	writeJSON(w, status, e)
}

func serveSSE(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	n, interval := 5, 100*time.Millisecond
	if s := q.Get("n"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 0 || v > maxEvents {
			httpError(w, http.StatusBadRequest, fmt.Sprintf("n must be a number of events from 0 to %d", maxEvents))
			return
		}
		n = v
	}
	if s := q.Get("interval"); s != "" {
		v, err := time.ParseDuration(s)
		if err != nil || v < 0 || v > maxSleep {
			httpError(w, http.StatusBadRequest, "interval must be a Go duration such as 100ms, at most 10m")
			return
		}
		interval = v
	}
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if rc.Flush() != nil {
		return
	}
	for i := range n {
		if i > 0 && !wait(r.Context(), interval) {
			return
		}
		if _, err := fmt.Fprintf(w, "data: {\"i\":%d}\n\n", i); err != nil {
			return
		}
		if rc.Flush() != nil {
			return
		}
	}
}

// sleep waits for the duration in the sleep query parameter. It reports
// false when the answer is already written (bad parameter) or the client
// has gone away.
func sleep(w http.ResponseWriter, r *http.Request) bool {
	s := r.URL.Query().Get("sleep")
	if s == "" {
		return true
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 || d > maxSleep {
		httpError(w, http.StatusBadRequest, "sleep must be a Go duration such as 250ms, at most 10m")
		return false
	}
	return wait(r.Context(), d)
}

// wait sleeps for d, returning false early if ctx ends.
func wait(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func httpError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
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
