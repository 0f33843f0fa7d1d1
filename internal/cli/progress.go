package cli

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/flint-dev/flint/internal/platform"
)

// coldStartWaitHeader is set by the gateway on answers that waited for a
// cold start.
const coldStartWaitHeader = "X-Flint-Cold-Start-Wait"

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

	mu    sync.Mutex
	shown bool
}

func startProgress(ctx context.Context, agents agentReader, key platform.AgentKey, out io.Writer) *progress {
	ctx, cancel := context.WithCancel(ctx)
	p := &progress{key: key, out: out, tty: isTerminal(out), cancel: cancel, done: make(chan struct{})}
	go p.run(ctx, agents)
	return p
}

func (p *progress) run(ctx context.Context, agents agentReader) {
	defer close(p.done)
	start := time.Now()
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
		fmt.Fprintf(p.out, "\r\033[K%s… %.1fs", msg, time.Since(start).Seconds())
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// waitingFor names what the request is most likely held for.
func (p *progress) waitingFor(ctx context.Context, agents agentReader) string {
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
// be nil after an error) and, if progress was shown, says how long the cold
// start took.
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
	if res != nil {
		if wait := res.Header.Get(coldStartWaitHeader); wait != "" {
			fmt.Fprintf(p.out, "%s started in %s\n", p.key, wait)
		}
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
