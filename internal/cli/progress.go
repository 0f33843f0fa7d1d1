package cli

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/flint-dev/flint/internal/gateway"
	"github.com/flint-dev/flint/internal/platform"
	"github.com/flint-dev/flint/internal/wire"
)

// progress tells the person at the terminal what a slow invocation waits
// for: after progressDelay without an answer it asks the gateway whether the
// agent has a ready replica, and says "waiting for default/echo to start…
// 1.2s" (redrawn in place on a terminal, once otherwise).
type progress struct {
	key    platform.AgentKey
	out    io.Writer
	tty    bool
	cancel context.CancelFunc
	done   chan struct{}
	start  time.Time
	// cold: the agent had no ready replica when the request was sent, so
	// the wait is its start whatever the replicas look like later.
	cold bool

	mu    sync.Mutex
	shown bool
}

// startProgress starts the display; before is the agent as it was just
// before the request (nil when unknown).
func startProgress(ctx context.Context, agents agentReader, key platform.AgentKey, before *gateway.AgentDetail, out io.Writer) *progress {
	ctx, cancel := context.WithCancel(ctx)
	p := &progress{key: key, out: out, tty: isTerminal(out), cancel: cancel, done: make(chan struct{}), start: time.Now(),
		cold: before != nil && before.ReadyReplicas == 0}
	go p.run(ctx, agents)
	return p
}

func (p *progress) run(ctx context.Context, agents agentReader) {
	defer close(p.done)
	select {
	case <-ctx.Done():
		return
	case <-time.After(progressDelay):
	}
	msg := p.waitingFor(ctx, agents)
	if ctx.Err() != nil {
		return
	}
	p.mu.Lock()
	p.shown = true
	if !p.tty {
		fmt.Fprintf(p.out, "%s…\n", msg)
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		fmt.Fprintf(p.out, "\r\033[K%s… %.1fs", msg, time.Since(p.start).Seconds())
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// waitingFor names what the request is most likely held for.
func (p *progress) waitingFor(ctx context.Context, agents agentReader) string {
	if p.cold {
		return "waiting for " + p.key.String() + " to start"
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	d, err := agents.Describe(ctx, p.key)
	switch {
	case err != nil:
		return "waiting for " + p.key.String()
	case d.ReadyReplicas == 0:
		return "waiting for " + p.key.String() + " to start"
	case d.Held > 0:
		return "waiting for a free replica of " + p.key.String()
	default:
		return "waiting for " + p.key.String() + " to answer"
	}
}

// stop ends the progress display once the answer's headers are in (res may
// be nil after an error) and, if progress was shown for a start, says how
// long the client waited for it (the gateway's X-Flint-Cold-Start-Wait is
// only the part it held the request, which misses what came before).
func (p *progress) stop(res *http.Response) {
	p.cancel()
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.shown {
		return
	}
	if p.tty {
		fmt.Fprint(p.out, "\r\033[K")
	}
	if res != nil && (p.cold || res.Header.Get(wire.HeaderColdStartWait) != "") {
		fmt.Fprintf(p.out, "%s started in %s\n", p.key, gateway.RoundWait(time.Since(p.start)))
	}
}

// isTerminal reports whether w is a terminal, so progress can be redrawn
// in place rather than written as lines.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
