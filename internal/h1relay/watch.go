package h1relay

import (
	"context"
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// clientWatch notices a client that leaves while its exchange waits on the
// upstream (a long agent call): net/http's server reads every connection
// in the background for that, a goroutine and two deadline changes per
// request; the relay starts watching only once an exchange has run for
// watchAfter, which fast requests never reach. Watching peeks at the
// socket without consuming: a pipelined request stays where it is.
type clientWatch struct {
	timer *time.Timer
	c     *clientConn
	done  chan struct{}
	gone  atomic.Bool
	buf   [1]byte

	mu     sync.Mutex // orders ending the watch with run clearing a stale deadline
	ended  bool
	onGone func() // what a leaving client ends; nil: the upstream exchange (cut)
}

// start arms the watch to begin after watchAfter; onGone, if not nil, is
// called instead of cutting the upstream exchange when the client leaves.
func (w *clientWatch) start(c *clientConn, onGone func()) {
	w.mu.Lock()
	w.onGone = onGone
	w.mu.Unlock()
	if w.timer == nil {
		w.c = c
		w.done = make(chan struct{}, 1)
		w.timer = time.AfterFunc(watchAfter, w.run)
		return
	}
	w.gone.Store(false)
	w.ended = false
	w.timer.Reset(watchAfter)
}

// stop ends the watch and reports whether the client left meanwhile.
func (w *clientWatch) stop(c *clientConn) bool {
	if w.timer.Stop() {
		return false
	}
	// The watch runs or has run: wake it and wait for it.
	w.mu.Lock()
	w.ended = true
	_ = c.nc.SetReadDeadline(aLongTimeAgo)
	w.mu.Unlock()
	<-w.done
	_ = c.nc.SetReadDeadline(time.Time{})
	return w.gone.Load()
}

func (w *clientWatch) run() {
	defer func() { w.done <- struct{}{} }()
	sc, ok := w.c.nc.(syscall.Conn)
	if !ok {
		return
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return
	}
	gone := false
	peek := func(fd uintptr) bool {
		n, _, err := syscall.Recvfrom(int(fd), w.buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		if err == syscall.EAGAIN {
			return false // wait until readable
		}
		gone = n == 0 || err != nil
		return true
	}
	for {
		err = raw.Read(peek)
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			break
		}
		// The idle deadline the request arrived under may still be set:
		// clear it and watch on, unless stop is what woke us.
		w.mu.Lock()
		ended := w.ended
		if !ended {
			_ = w.c.nc.SetReadDeadline(time.Time{})
		}
		w.mu.Unlock()
		if ended {
			return
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if err == nil && gone && !w.ended {
		w.gone.Store(true)
		if w.onGone != nil {
			w.onGone()
		} else {
			w.c.cut()
		}
	}
}

// WatchClient returns a context under parent that ends when the client
// leaves, for a handler that waits before it relays (a queue, an agent not
// ready yet): the watch an exchange has, begun after the same delay, so a
// short wait costs nothing. stop ends the watch; call it before Relay.
func (ex *Exchange) WatchClient(parent context.Context) (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancel(parent)
	c := ex.c
	c.watch.start(c, cancel)
	return ctx, func() {
		c.watch.stop(c)
		cancel()
	}
}
