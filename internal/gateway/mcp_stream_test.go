package gateway

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

// chunkedReader hands out its chunks one Read at a time, waiting on gate
// before each (so a test controls when the replica "sends").
type chunkedReader struct {
	chunks []string
	gate   chan struct{}
	closed chan struct{}
	err    error
}

func newChunked(err error, chunks ...string) *chunkedReader {
	return &chunkedReader{chunks: chunks, gate: make(chan struct{}, 100), closed: make(chan struct{}), err: err}
}

func (c *chunkedReader) Read(p []byte) (int, error) {
	select {
	case <-c.gate:
	case <-c.closed:
		return 0, errors.New("read on closed body")
	}
	if len(c.chunks) == 0 {
		return 0, c.err
	}
	n := copy(p, c.chunks[0])
	c.chunks = c.chunks[1:]
	return n, nil
}

func (c *chunkedReader) Close() error {
	select {
	case <-c.closed:
	default:
		close(c.closed)
	}
	return nil
}

func (c *chunkedReader) send(n int) {
	for range n {
		c.gate <- struct{}{}
	}
}

// readFor reads from s for d and returns what arrived.
func readFor(s *sseBody, d time.Duration) (string, error) {
	type res struct {
		b   string
		err error
	}
	out := make(chan res, 1)
	go func() {
		var sb strings.Builder
		buf := make([]byte, 64)
		for {
			n, err := s.Read(buf)
			sb.Write(buf[:n])
			if err != nil {
				out <- res{sb.String(), err}
				return
			}
		}
	}()
	select {
	case r := <-out:
		return r.b, r.err
	case <-time.After(d):
		s.stop()
		r := <-out
		return r.b, nil
	}
}

func TestSSEKeepAliveOnlyBetweenEvents(t *testing.T) {
	src := newChunked(io.EOF, "data: one\n\n", "data: two, half", " done\n\n")
	s := newSSEBody(src, context.Background(), 30*time.Millisecond)
	defer s.Close()
	src.send(2) // "one" whole, then "two" stalls mid-event
	got, _ := readFor(s, 200*time.Millisecond)
	if !strings.HasPrefix(got, "data: one\n\n") {
		t.Fatalf("got %q", got)
	}
	rest := strings.TrimPrefix(got, "data: one\n\n")
	// Keep-alives may come while silent between events, never inside one.
	rest = strings.ReplaceAll(rest, string(keepAliveComment), "")
	if rest != "data: two, half" {
		t.Errorf("keep-alive placed inside an event: %q", got)
	}
}

func TestSSEKeepAliveWhenSilent(t *testing.T) {
	src := newChunked(io.EOF)
	s := newSSEBody(src, context.Background(), 20*time.Millisecond)
	defer s.Close()
	got, _ := readFor(s, 150*time.Millisecond)
	if n := strings.Count(got, string(keepAliveComment)); n < 3 || strings.ReplaceAll(got, string(keepAliveComment), "") != "" {
		t.Errorf("silent stream relayed %q", got)
	}
}

func TestSSEStopEndsCleanly(t *testing.T) {
	src := newChunked(io.EOF, "data: x\n\n")
	s := newSSEBody(src, context.Background(), 0)
	src.send(1)
	got, err := readFor(s, 100*time.Millisecond)
	if got != "data: x\n\n" || err != nil {
		t.Errorf("got %q, %v", got, err)
	}
	if n, err := s.Read(make([]byte, 8)); n != 0 || err != io.EOF {
		t.Errorf("after stop: %d, %v; want a clean EOF", n, err)
	}
	s.Close()
}

func TestSSERequestEndIsACleanEnd(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	src := newChunked(context.DeadlineExceeded, "data: x\n\n")
	s := newSSEBody(src, ctx, 0)
	defer s.Close()
	cancel()
	src.send(2)
	got, err := readFor(s, time.Second)
	if got != "data: x\n\n" || err != io.EOF {
		t.Errorf("got %q, %v; want the event, then io.EOF", got, err)
	}

	// Without the request's end, a broken replica stream stays an error.
	src2 := newChunked(errors.New("connection reset"), "data: x\n\n")
	s2 := newSSEBody(src2, context.Background(), 0)
	defer s2.Close()
	src2.send(2)
	if _, err := readFor(s2, time.Second); err == nil || err == io.EOF {
		t.Errorf("a replica's broken stream became %v", err)
	}
}

func TestSSEBetweenEvents(t *testing.T) {
	for in, want := range map[string]bool{
		"": true, "data: a\n\n": true, "data: a\r\n\r\n": true, "data: a\r\r": true,
		"data: a\n": false, "data: a": false, "data: a\r\n": false, "\n\ndata": false,
	} {
		s := &sseBody{tail: [4]byte{'\n', '\n', '\n', '\n'}}
		for _, c := range []byte(in) { // byte by byte exercises the tail's shifting
			s.note([]byte{c})
		}
		if got := s.betweenEvents(); got != want {
			t.Errorf("after %q: betweenEvents = %v, want %v", in, got, want)
		}
	}
}
