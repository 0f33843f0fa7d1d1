package h1relay_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/flint-dev/flint/internal/h1relay"
)

// These tests hold for both ways the relay serves (goroutines, and event
// loops with -loops), and reach the loops' edges: a read buffer that fills
// with pipelined requests, a client that does not read its answers for a
// while, an answer of known length whose body comes in pieces.

// Pipelined requests beyond the relay's read buffer are all answered, in
// order.
func TestPipelinedBeyondTheBuffer(t *testing.T) {
	e := start(t, config{})
	c := e.dial(t)
	pad := strings.Repeat("x", 120)
	var reqs strings.Builder
	const n = 300 // about 45 KiB of requests
	for i := range n {
		reqs.WriteString(get(fmt.Sprintf("/p/%03d?%s", i, pad), "x"))
	}
	go func() { _, _ = io.WriteString(c.nc, reqs.String()) }()
	for i := range n {
		res, body := c.read(t, "GET")
		wantServedBy(t, res, body, "upstream", fmt.Sprintf("up GET /p/%03d?%s ", i, pad))
		if t.Failed() {
			t.Fatalf("answer %d", i)
		}
	}
}

// A client that sends many requests and reads nothing for a while gets
// every answer once it reads, in order.
func TestSlowReaderGetsEveryAnswer(t *testing.T) {
	e := start(t, config{})
	c := e.dial(t)
	body := strings.Repeat("b", 8<<10)
	const n = 200 // about 1.6 MiB of answers: more than the sockets buffer
	go func() {
		for i := range n {
			req := fmt.Sprintf("POST /s/%d HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", i, len(body), body)
			if _, err := io.WriteString(c.nc, req); err != nil {
				return
			}
		}
	}()
	time.Sleep(300 * time.Millisecond)
	for i := range n {
		_ = c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		res, err := http.ReadResponse(c.br, &http.Request{Method: "POST"})
		if err != nil {
			t.Fatalf("answer %d: %v", i, err)
		}
		got, err := io.ReadAll(res.Body)
		// A body that had not all arrived with its head goes to net/http,
		// as the relay does.
		want := fmt.Sprintf("up POST /s/%d %s", i, body)
		if res.Header.Get("X-Served-By") == "fallback" {
			want = fmt.Sprintf("fallback POST /s/%d HTTP/1.1 %s", i, body)
		}
		if err != nil || string(got) != want {
			t.Fatalf("answer %d: %d bytes (%v), want %d", i, len(got), err, len(want))
		}
	}
}

// An answer of known length whose body comes in pieces reaches the client
// piece by piece, and the connection serves on after it.
func TestLengthBodyInPiecesStreams(t *testing.T) {
	second := make(chan struct{})
	upAddr := rawUpstream(t, func(nc net.Conn, br *bufio.Reader) {
		for n := 0; ; n++ {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			if req.URL.Path != "/pieces" {
				fmt.Fprintf(nc, "HTTP/1.1 200 OK\r\nX-Served-By: upstream\r\nContent-Length: 4\r\n\r\nrest")
				continue
			}
			fmt.Fprintf(nc, "HTTP/1.1 200 OK\r\nX-Served-By: upstream\r\nContent-Length: 10\r\n\r\nfirst")
			select {
			case <-second:
			case <-time.After(10 * time.Second):
				return
			}
			fmt.Fprintf(nc, "-last")
		}
	})
	e := start(t, config{upAddr: upAddr})
	c := e.dial(t)
	c.send(t, get("/pieces", "x"))
	_ = c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	res, err := http.ReadResponse(c.br, &http.Request{Method: "GET"})
	if err != nil {
		t.Fatalf("the head did not come before the body's end: %v", err)
	}
	first := make([]byte, 5)
	if _, err := io.ReadFull(res.Body, first); err != nil || string(first) != "first" {
		t.Fatalf("the first piece did not come before the second was sent: %q, %v", first, err)
	}
	close(second)
	rest, err := io.ReadAll(res.Body)
	if err != nil || string(rest) != "-last" {
		t.Fatalf("the rest: %q, %v", rest, err)
	}
	c.send(t, get("/after", "x"))
	res, body := c.read(t, "GET")
	wantServedBy(t, res, body, "upstream", "rest")
}

// rawUpstream serves each connection with serve, on bytes of the test's own.
func rawUpstream(t *testing.T, serve func(nc net.Conn, br *bufio.Reader)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var conns []net.Conn
	go func() {
		defer close(done)
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, nc)
			go func() {
				defer nc.Close()
				serve(nc, bufio.NewReader(nc))
			}()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		<-done
		for _, nc := range conns {
			_ = nc.Close()
		}
	})
	return ln.Addr().String()
}

// On the loops, an upstream that does not take the connection fails the
// exchange after Upstream.DialTimeout as a dialer's timeout does (the
// gateway then tries another replica), not after the exchange's timeout.
func TestLoopConnectTimeout(t *testing.T) {
	e := start(t, config{upAddr: unreachable(t), loops: 2, up: h1relay.Upstream{DialTimeout: 300 * time.Millisecond}})
	c := e.dial(t)
	began := time.Now()
	c.send(t, get("/x", "x"))
	res, body := c.read(t, "GET")
	r := e.h.next(t)
	var op *net.OpError
	if res.StatusCode != http.StatusBadGateway || !errors.As(r.err, &op) || op.Op != "dial" || !errors.Is(r.err, syscall.ETIMEDOUT) {
		t.Fatalf("answer %d %q, error %v; want 502 after a dial timeout", res.StatusCode, body, r.err)
	}
	if waited := time.Since(began); waited > 5*time.Second {
		t.Errorf("the connect failed after %s, want about 300ms", waited)
	}
}

// unreachable is the address of a listener whose accept queue is full:
// the kernel drops further SYNs, so a connect to it waits.
func unreachable(t *testing.T) string {
	addr, _ := unreachableUntil(t)
	return addr
}

// unreachableUntil is unreachable, and a function that closes the
// listener: a connect waiting on it then meets a reset at its next SYN.
func unreachableUntil(t *testing.T) (string, func()) {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	closeFD := func() { once.Do(func() { _ = syscall.Close(fd) }) }
	t.Cleanup(closeFD)
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
	for range 3 { // fill the queue; the last ones wait themselves
		if nc, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			t.Cleanup(func() { _ = nc.Close() })
		}
	}
	return addr, closeFD
}

// An upstream that refuses the connection fails the exchange as a dial
// (the agent never saw the request, so a gateway may try another
// replica), however the refusal comes: at once, or as an error event on a
// connect in progress.
func TestConnectRefusedIsADial(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	_ = ln.Close()
	e := start(t, config{upAddr: closed})
	c := e.dial(t)
	c.send(t, get("/at-once", "x"))
	wantRefusedDial(t, c, closed)

	// A connect in progress when the upstream goes (an agent exiting).
	waiting, gone := unreachableUntil(t)
	e = start(t, config{upAddr: waiting})
	c = e.dial(t)
	c.send(t, get("/in-progress", "x"))
	time.Sleep(100 * time.Millisecond)
	gone()
	wantRefusedDial(t, c, waiting)
}

func wantRefusedDial(t *testing.T, c *client, addr string) {
	t.Helper()
	res, body := c.read(t, "GET")
	if res.StatusCode != http.StatusBadGateway || !strings.HasPrefix(body, "dial tcp "+addr+": connect: connection refused") {
		t.Fatalf("%d %q, want 502 for a refused dial", res.StatusCode, body)
	}
}
