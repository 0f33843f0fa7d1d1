package h1relay_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/flint-dev/flint/internal/h1relay"
	"github.com/flint-dev/flint/internal/testutil"
)

// ---- 5. Shutdown ----------------------------------------------------------

// Shutdown stops accepting, closes a kept-alive idle connection at once,
// lets a request in flight finish with an answer that says Connection:
// close (then closes that connection), and returns only once both are done;
// Serve returns http.ErrServerClosed.
func TestShutdown(t *testing.T) {
	e := start(t, config{})
	idle := e.dial(t)
	idle.send(t, get("/warm", "x"))
	res, body := idle.read(t, "GET")
	wantServedBy(t, res, body, "upstream", "up GET /warm ")

	busy := e.dial(t)
	busy.send(t, get("/gate", "x"))
	testutil.WaitFor(t, "the upstream to get /gate", func() bool { _, ok := e.agent.find("/gate"); return ok })

	shutdownDone := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		shutdownDone <- e.srv.Shutdown(ctx)
	}()

	if err := idle.closedWithin(5 * time.Second); err != nil {
		t.Errorf("the idle connection: %v", err)
	}
	time.Sleep(50 * time.Millisecond)
	select {
	case err := <-shutdownDone:
		t.Fatalf("Shutdown returned (%v) with a request in flight", err)
	default:
	}
	if nc, err := net.DialTimeout("tcp", e.addr, time.Second); err == nil {
		_ = nc.Close()
		t.Error("a new connection was accepted after Shutdown")
	}

	e.agent.open() // the upstream answers now
	res, body = busy.read(t, "GET")
	wantServedBy(t, res, body, "upstream", "up GET /gate ")
	if !res.Close {
		t.Error("the answer in flight during Shutdown does not say Connection: close")
	}
	if err := busy.closedWithin(5 * time.Second); err != nil {
		t.Errorf("the busy connection after its answer: %v", err)
	}

	select {
	case err := <-shutdownDone:
		if err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown did not return within 5s of the last answer")
	}
	select {
	case <-e.served:
		if !errors.Is(e.serveErr, http.ErrServerClosed) {
			t.Errorf("Serve returned %v, want http.ErrServerClosed", e.serveErr)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return within 5s of Shutdown")
	}
}

// Shutdown before Serve (a stop signal during start-up) makes the later
// Serve return http.ErrServerClosed at once, as net/http's does, rather than
// serve a listener nobody will stop.
func TestShutdownBeforeServe(t *testing.T) {
	srv := &h1relay.Server{Handler: &relayHandler{}, Fallback: &http.Server{}}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		if !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve returned %v, want http.ErrServerClosed", err)
		}
	case <-time.After(2 * time.Second):
		_ = ln.Close()
		<-served
		t.Error("Serve after Shutdown still accepting after 2s (it returned only once the test closed the listener)")
	}
}

// ---- 6. timeouts on the client side -----------------------------------------

// A client that sends half a head and stalls is disconnected once
// ReadHeaderTimeout has passed, by the relay itself: the partial head is not
// handed to the fallback, which would start a fresh header timeout of its
// own (here a long one, as the sidecar's 30s).
func TestReadHeaderTimeout(t *testing.T) {
	const timeout = 200 * time.Millisecond
	e := start(t, config{readHeader: timeout, fallbackReadHeaderTimeout: 30 * time.Second})
	c := e.dial(t)
	begin := time.Now()
	c.send(t, "GET /stall HTTP/1.1\r\nHost: x\r\n")
	err := c.closedWithin(5 * time.Second)
	elapsed := time.Since(begin)
	if err != nil {
		t.Errorf("half a head, then silence: %v (the relay handed %d connections to the fallback)", err, e.handoffs.Load())
	} else if elapsed < timeout*3/4 {
		t.Errorf("disconnected after %s, before the %s ReadHeaderTimeout", elapsed, timeout)
	}
	if n := e.handoffs.Load(); n != 0 {
		t.Errorf("the stalled partial head was handed to the fallback (%d connections)", n)
	}
	if n := e.fallback.count() + int(e.h.relayed.Load()); n != 0 {
		t.Errorf("%d requests served, want none", n)
	}
}

// A kept-alive connection with no next request is closed after IdleTimeout.
func TestIdleTimeout(t *testing.T) {
	const timeout = 200 * time.Millisecond
	e := start(t, config{idleTimeout: timeout})
	c := e.dial(t)
	c.send(t, get("/once", "x"))
	res, body := c.read(t, "GET")
	wantServedBy(t, res, body, "upstream", "up GET /once ")
	begin := time.Now()
	if err := c.closedWithin(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if elapsed := time.Since(begin); elapsed < timeout/2 {
		t.Errorf("closed after %s, well before the %s IdleTimeout", elapsed, timeout)
	}
}
