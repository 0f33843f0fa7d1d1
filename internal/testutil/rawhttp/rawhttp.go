// Package rawhttp is the harness the header fuzzers of the gateway and the
// sidecar share: it writes a request byte for byte to a real server (no
// http.Client to tidy it up), predicts what Go's HTTP/1.1 parser makes of
// it, reads the answer, and records what the agent behind the server
// received, so each fuzzer states only the rules of its own hop.
// Only _test.go files import it; it imports only the standard library.
package rawhttp

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Head builds a request's head line by line.
type Head struct{ b strings.Builder }

// NewHead starts a head with its request line and Host.
func NewHead(method, target, host string) *Head {
	h := &Head{}
	fmt.Fprintf(&h.b, "%s %s HTTP/1.1\r\nHost: %s\r\n", method, target, host)
	return h
}

// Line adds "k: v", or nothing when v is empty.
func (h *Head) Line(k, v string) {
	if v != "" {
		h.b.WriteString(k + ": " + v + "\r\n")
	}
}

// Raw adds lines as they are (a fuzzer's free-form header lines), ending
// them with CRLF unless they end in a newline already.
func (h *Head) Raw(lines string) {
	if lines != "" {
		h.b.WriteString(lines)
		if !strings.HasSuffix(lines, "\n") {
			h.b.WriteString("\r\n")
		}
	}
}

// String ends the head with its blank line.
func (h *Head) String() string { return h.b.String() + "\r\n" }

// Parse parses raw as Go's HTTP/1.1 server would. It returns the request
// (nil if the parser refuses it) and whether the server may be left
// waiting for more: the request or its body ran into an error (a body
// shorter than its framing, say).
func Parse(raw string) (req *http.Request, wait bool) {
	br := bufio.NewReader(strings.NewReader(raw))
	req, err := http.ReadRequest(br)
	if err != nil {
		return nil, true
	}
	if _, err := io.Copy(io.Discard, req.Body); err != nil {
		return req, true
	}
	// Bytes after the request are sent too: the server may peek at them (a
	// trailer's end) and parse them as a next request after answering
	// ours, which is all this reads.
	return req, false
}

// Send writes raw to addr and reads the final answer to it, its body kept
// for Body. When the server might wait for bytes that will never come (see
// Parse) the client then closes its write side, as one that gives up would
// (gaveUp); Go's server may then take it for gone (499). res is nil when a
// request Go's parser refuses got no answer (the server closed or reset
// the connection). shown is raw as failure messages may print it.
func Send(t testing.TB, addr, method, raw, shown string) (res *http.Response, gaveUp bool) {
	t.Helper()
	req, gaveUp := Parse(raw)
	malformed := req == nil
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	// A server that answers early (400) may close before all is written;
	// its answer is still there to read.
	_, _ = io.WriteString(c, raw)
	if gaveUp {
		_ = c.(*net.TCPConn).CloseWrite()
	}
	br := bufio.NewReader(c)
	for {
		res, err = http.ReadResponse(br, &http.Request{Method: method})
		if err == nil {
			var b []byte
			b, err = io.ReadAll(res.Body)
			res.Body.Close()
			res.Body = io.NopCloser(bytes.NewReader(b))
		}
		if err != nil {
			if malformed && (errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)) {
				return nil, gaveUp
			}
			t.Fatalf("no well-formed response to %q: %v", shown, err)
		}
		if res.StatusCode >= 200 || res.StatusCode == http.StatusSwitchingProtocols {
			return res, gaveUp
		}
	}
}

// Body returns the body of a response Send read.
func Body(res *http.Response) string {
	b, _ := io.ReadAll(res.Body)
	return string(b)
}

// IDs names requests uniquely, so the agent's record of each can be found:
// a random prefix (several fuzzing workers share one agent) and a count.
type IDs struct {
	prefix string
	next   atomic.Int64
}

// NewIDs returns IDs with a fresh random prefix.
func NewIDs(tb testing.TB) *IDs {
	return &IDs{prefix: "fz-" + RandomHex(tb, 4) + "-"}
}

// Next returns an id not given before.
func (ids *IDs) Next() string { return ids.prefix + fmt.Sprint(ids.next.Add(1)) }

// RandomHex returns n random bytes in hex, for ids and secrets.
func RandomHex(tb testing.TB, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		tb.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// PanicLog is a log destination that remembers the first line about a
// handler panic ("panic serving", as net/http logs them).
type PanicLog struct{ seen atomic.Value }

func (p *PanicLog) Write(b []byte) (int, error) {
	if bytes.Contains(b, []byte("panic serving")) {
		p.Note(string(b))
	}
	return len(b), nil
}

// Note records a panic found another way, if none was recorded yet.
func (p *PanicLog) Note(s string) { p.seen.CompareAndSwap(nil, s) }

// Seen returns the first panic recorded, or "".
func (p *PanicLog) Seen() string {
	s, _ := p.seen.Load().(string)
	return s
}
