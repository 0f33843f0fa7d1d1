package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// pprofConfig is the -pprof-addr flag of the long-running roles: Go's
// profiles (heap, goroutines, CPU) on an address of their own, off by
// default, for measuring (bench/scale takes heap profiles through it).
type pprofConfig struct {
	Addr string
}

func (c *pprofConfig) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Addr, "pprof-addr", "", "`address` serving Go's profiles at /debug/pprof/ (empty: off; keep it off public networks)")
}

// serve listens on Addr until ctx ends; it returns at once when Addr is
// empty.
func (c pprofConfig) serve(ctx context.Context, log *slog.Logger) error {
	if c.Addr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", c.Addr)
	if err != nil {
		return fmt.Errorf("-pprof-addr: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	log.Info("serving profiles", "addr", ln.Addr().String())
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("profile server stopped", "error", err)
		}
	}()
	return nil
}
