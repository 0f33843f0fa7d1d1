package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flint-dev/flint/bench/internal/procs"
)

// startEventLoop runs one loop in front of h; the test's cleanup stops it
// and checks that it returned cleanly.
func startEventLoop(t *testing.T, h http.Handler) string {
	t.Helper()
	agent := &http.Server{Handler: h}
	al, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go agent.Serve(al)
	t.Cleanup(func() { agent.Close() })

	var stop [2]int
	if err := syscall.Pipe2(stop[:], syscall.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	addr := procs.FreeAddr()
	l, err := newEventLoop(addr, al.Addr().String(), stop[0])
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- l.run() }()
	t.Cleanup(func() {
		syscall.Write(stop[1], []byte{1})
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("the loop did not stop")
		}
		syscall.Close(stop[0])
		syscall.Close(stop[1])
		if c, err := net.Dial("tcp4", addr); err == nil {
			c.Close()
			t.Error("the listener is still open after the loop stopped")
		}
	})
	return addr
}

func TestEventLoopRelaysInOrder(t *testing.T) {
	addr := startEventLoop(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "answer to %s", r.URL.Path)
	}))
	c, err := net.Dial("tcp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	read := func(path string) {
		t.Helper()
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("answer to %s: %v", path, err)
		}
		body, _ := io.ReadAll(res.Body)
		if want := "answer to " + path; string(body) != want {
			t.Fatalf("got %q, want %q", body, want)
		}
	}
	// One at a time on a kept-alive connection, then three pipelined.
	for _, p := range []string{"/a", "/b"} {
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", p)
		read(p)
	}
	fmt.Fprint(c, "GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\nGET /3 HTTP/1.1\r\nHost: x\r\n\r\n")
	for _, p := range []string{"/1", "/2", "/3"} {
		read(p)
	}
}

// An answer it cannot frame (no Content-Length) and a head larger than its
// buffer close the client's connection.
func TestEventLoopClosesWhatItCannotRelay(t *testing.T) {
	addr := startEventLoop(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("part"))
		w.(http.Flusher).Flush() // chunked
	}))
	for _, req := range []string{"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n", strings.Repeat("X", 20<<10)} {
		if got, err := exchange(t, addr, req); err != nil || got != "" {
			t.Errorf("%.20q: got %q, %v; want the connection closed with nothing sent", req, got, err)
		}
	}
}

// Bytes the agent sends unasked, with an answer or later, close the
// connection rather than pass for the next request's answer.
func TestEventLoopDropsAnAgentThatSpeaksUnasked(t *testing.T) {
	const ok = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	const extra = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nextra"
	addr := startEventLoop(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, brw, _ := w.(http.Hijacker).Hijack()
		defer c.Close()
		brw.WriteString(ok)
		if r.URL.Path == "/together" {
			brw.WriteString(extra)
		}
		brw.Flush()
		if r.URL.Path == "/later" {
			time.Sleep(50 * time.Millisecond)
			brw.WriteString(extra)
			brw.Flush()
		}
		io.Copy(io.Discard, c) // until the relay closes
	}))
	for _, path := range []string{"/together", "/later"} {
		req := "GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n"
		got, err := exchange(t, addr, req, "GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
		if err != nil || got != ok {
			t.Errorf("%s: got %q, %v; want %q, then the connection closed", path, got, err, ok)
		}
	}
}

// exchange sends each request 200ms after the last and returns all the
// connection received until it closed.
func exchange(t *testing.T, addr string, reqs ...string) (string, error) {
	c, err := net.Dial("tcp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	for i, req := range reqs {
		if i > 0 {
			time.Sleep(200 * time.Millisecond)
		}
		fmt.Fprint(c, req)
	}
	got, err := io.ReadAll(c)
	if errors.Is(err, syscall.ECONNRESET) { // closed with the client's bytes unread
		err = nil
	}
	return string(got), err
}

func TestContentLength(t *testing.T) {
	for head, want := range map[string]int{
		"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n":    12,
		"HTTP/1.1 200 OK\r\ncontent-length:0\r\n":      0,
		"HTTP/1.1 200 OK\r\nX: y\r\nCONTENT-LENGTH: 7": 7,
	} {
		if n, ok := contentLength([]byte(head)); !ok || n != want {
			t.Errorf("contentLength(%q) = %d, %v; want %d", head, n, ok, want)
		}
	}
	for _, head := range []string{"HTTP/1.1 200 OK\r\n", "HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n", "HTTP/1.1 200 OK\r\nContent-Length:\r\n"} {
		if _, ok := contentLength([]byte(head)); ok {
			t.Errorf("contentLength(%q) accepted", head)
		}
	}
}
