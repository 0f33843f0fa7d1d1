package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/flint-dev/flint/api/v1alpha1"
	"github.com/flint-dev/flint/internal/gateway"
	"github.com/flint-dev/flint/internal/h1relay"
	"github.com/flint-dev/flint/internal/platform"
	"github.com/flint-dev/flint/internal/platform/local"
)

// listenGateway listens on addr, saying what to do when it cannot.
func listenGateway(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	switch {
	case err == nil:
		return ln, nil
	case errors.Is(err, syscall.EADDRINUSE):
		return nil, fmt.Errorf("listen on %s: the address is in use: is another flint running? stop it or pick another -addr", addr)
	case errors.Is(err, syscall.EACCES):
		return nil, fmt.Errorf("listen on %s: permission denied: ports below 1024 need privileges; pick another -addr such as 127.0.0.1:8080", addr)
	default:
		return nil, fmt.Errorf("listen on -addr %s: %w (give HOST:PORT such as 127.0.0.1:8080)", addr, err)
	}
}

// shutdownLocal stops `flint up` after the first SIGINT or SIGTERM: it says
// how many requests it waits for and for how long at most, then finishes
// them and stops the replicas. A second signal stops everything at once.
func shutdownLocal(cfg upConfig, srv h1relay.PortServer, gw *gateway.Gateway, rt *local.Runtime, log *slog.Logger, stopLoop func(), loopDone <-chan struct{}) error {
	again := make(chan os.Signal, 1)
	signal.Notify(again, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(again)
	log.Info(fmt.Sprintf("shutting down: waiting for %s in flight (at most %s), then stopping the replicas; press Ctrl-C again to stop now",
		plural(inFlight(gw), "request"), cfg.ShutdownTimeout))

	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	forced := make(chan struct{})
	go func() {
		select {
		case <-again:
			log.Warn("second signal: stopping now, cutting requests in flight and killing the replicas")
			close(forced)
			cancel()
		case <-sctx.Done():
		}
	}()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		_ = srv.Close() // cut what is left
		if !isClosed(forced) {
			log.Warn("gateway shutdown", "error", err)
		}
	}
	stopLoop()
	<-loopDone
	err := rt.Shutdown(sctx)
	if isClosed(forced) {
		rt.Kill()
		log.Info("stopped")
		return nil
	}
	if err != nil {
		rt.Kill()
		return err
	}
	log.Info("stopped")
	return nil
}

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// inFlight is how many requests the gateway is serving or holding.
func inFlight(gw *gateway.Gateway) int {
	n := 0
	for _, key := range gw.DemandKeys() {
		d := gw.Demand(key)
		n += int(d.InFlight) + int(d.Held)
	}
	return n
}

// plural is "1 request", "2 requests".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// listSome joins at most n items, saying how many more there are.
func listSome(items []string, n int) string {
	if len(items) <= n {
		return strings.Join(items, ", ")
	}
	return strings.Join(items[:n], ", ") + fmt.Sprintf(" and %d more", len(items)-n)
}

// printBanner says where the gateway is, lists the agents, and gives a
// command that works on the first one it can show (an HTTP agent's path,
// an A2A agent's card, an MCP agent's tools).
func printBanner(w io.Writer, base string, agents []*v1alpha1.Agent) {
	fmt.Fprintf(w, "Flint is up. Gateway: %s\n\n", base)
	for _, a := range agents {
		fmt.Fprintf(w, "  %-24s %-5s %s\n", a.Namespace+"/"+a.Name, a.Spec.Protocol, agentURL(base, a))
	}
	if try := tryCommand(base, agents); try != "" {
		fmt.Fprintf(w, "\nTry:\n  %s\n\n", try)
	}
}

func agentURL(base string, a *v1alpha1.Agent) string {
	return base + routePath(platform.KeyOf(a), "/")
}

// tryCommand is the banner's example: HTTP agents first (any path answers
// on the example echo agent; the agent's readiness path is one it serves
// for sure otherwise), then A2A, then MCP.
func tryCommand(base string, agents []*v1alpha1.Agent) string {
	for _, want := range []v1alpha1.Protocol{v1alpha1.ProtocolHTTP, v1alpha1.ProtocolA2A, v1alpha1.ProtocolMCP} {
		for _, a := range agents {
			if a.Spec.Protocol != want {
				continue
			}
			switch want {
			case v1alpha1.ProtocolHTTP:
				path := "hello"
				if p := a.Spec.Container.ReadinessProbe; p != nil && p.HTTPGet != nil && p.HTTPGet.Path != "" && a.Name != "echo" {
					path = strings.TrimPrefix(p.HTTPGet.Path, "/")
				}
				return "curl " + agentURL(base, a) + path
			case v1alpha1.ProtocolA2A:
				return "curl " + agentURL(base, a) + ".well-known/agent-card.json"
			default:
				name := a.Name
				if a.Namespace != v1alpha1.DefaultNamespace {
					name = a.Namespace + "/" + name
				}
				return "flint mcp tools " + name
			}
		}
	}
	return ""
}
