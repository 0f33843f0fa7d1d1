package h1relay

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// streamFixture runs relay between an upstream pipe the test writes and a
// client pipe the test reads: a byte reaches the client only once relay
// flushed it.
type streamFixture struct {
	upW  *io.PipeWriter
	body io.Reader
	done <-chan error
}

func newStreamFixture(t *testing.T, head string) *streamFixture {
	t.Helper()
	upW, cli, done := pipeRelay(t)
	f := &streamFixture{upW: upW, done: done}
	go func() { _, _ = upW.Write([]byte(head)) }()
	resp := readWithin(t, func() (*http.Response, error) { return http.ReadResponse(cli, nil) })
	f.body = resp.Body
	return f
}

// pipeRelay runs relay on one answer from the upstream pipe it returns to
// the client reader it returns; done gets relay's outcome.
func pipeRelay(t *testing.T) (up *io.PipeWriter, cli *bufio.Reader, done <-chan error) {
	upR, upW := io.Pipe()
	cliR, cliW := io.Pipe()
	result := make(chan error, 1)
	go func() {
		rl := relayer{drop: dropFlint}
		w := bufio.NewWriter(cliW)
		_, err := relayWith(&rl, bufio.NewReader(upR), w, false, false)
		if ferr := w.Flush(); err == nil {
			err = ferr
		}
		cliW.CloseWithError(err)
		result <- err
	}()
	// Unblock both goroutines whatever the test's outcome.
	t.Cleanup(func() {
		upW.CloseWithError(errors.New("test over"))
		cliR.Close()
	})
	return upW, bufio.NewReader(cliR), result
}

// send writes to the upstream pipe without waiting for relay to read it.
func (f *streamFixture) send(s string) {
	go func() { _, _ = f.upW.Write([]byte(s)) }()
}

func (f *streamFixture) expect(t *testing.T, want string) {
	t.Helper()
	got := readWithin(t, func() ([]byte, error) {
		b := make([]byte, len(want))
		_, err := io.ReadFull(f.body, b)
		return b, err
	})
	if string(got) != want {
		t.Fatalf("client got %q, want %q", got, want)
	}
}

const sseHead = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"

// TestRelayStreamFlushesEachChunk: each event reaches the client before
// the upstream produces the next (send waits for nothing, and the next
// event is produced only once the client has the previous one).
func TestRelayStreamFlushesEachChunk(t *testing.T) {
	f := newStreamFixture(t, sseHead)
	events := []string{"data: one\n\n", "data: two\n\n", "data: three\n\n"}
	for _, e := range events {
		f.send(chunk(e))
		f.expect(t, e)
	}
	f.send("0\r\n\r\n")
	if rest, err := io.ReadAll(f.body); err != nil || len(rest) > 0 {
		t.Errorf("after the last chunk: %q, %v", rest, err)
	}
	if err := <-f.done; err != nil {
		t.Errorf("relay: %v", err)
	}
}

// TestRelayStreamFlushesCloseDelimited: a body delimited by the upstream
// closing streams too, re-chunked as it comes.
func TestRelayStreamFlushesCloseDelimited(t *testing.T) {
	f := newStreamFixture(t, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n")
	for _, e := range []string{"data: one\n\n", "data: two\n\n"} {
		f.send(e)
		f.expect(t, e)
	}
	f.upW.Close()
	if rest, err := io.ReadAll(f.body); err != nil || len(rest) > 0 {
		t.Errorf("after the upstream closed: %q, %v", rest, err)
	}
	if err := <-f.done; err != nil {
		t.Errorf("relay: %v", err)
	}
}

// TestRelayStreamFlushesContentLength: a long Content-Length body goes out
// as it arrives, not when complete.
func TestRelayStreamFlushesContentLength(t *testing.T) {
	f := newStreamFixture(t, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n")
	f.send("hello")
	f.expect(t, "hello")
	f.send("world")
	f.expect(t, "world")
	if err := <-f.done; err != nil {
		t.Errorf("relay: %v", err)
	}
}

// TestRelayStreamFlushesBeforePartialChunkLine: an upstream's write need
// not end at a chunk boundary. When the end of one event arrives together
// with the first bytes of the next chunk-size line, relay waits on the
// upstream for the rest of that line; the event it has must be with the
// client by then, or the client sees it only when the next one is
// produced, which for an event stream can be much later.
func TestRelayStreamFlushesBeforePartialChunkLine(t *testing.T) {
	f := newStreamFixture(t, sseHead)
	f.send(chunk("data: one\n\n") + "b") // "b\r\n" starts the next chunk
	f.expect(t, "data: one\n\n")
	f.send("\r\ndata: two\n\r\n0\r\n\r\n")
	f.expect(t, "data: two\n")
}

// TestRelayStreamFlushesBeforeChunkCRLF: likewise when a chunk's data
// arrives without its closing CRLF.
func TestRelayStreamFlushesBeforeChunkCRLF(t *testing.T) {
	f := newStreamFixture(t, sseHead)
	f.send("b\r\ndata: one\n\n")
	f.expect(t, "data: one\n\n")
	f.send("\r\n0\r\n\r\n")
}

// TestRelayTrailerDeclaringFraming: a Trailer header announcing a framing
// field (RFC 9110 §6.5.1 forbids them in trailers) makes net/http's
// client refuse the whole answer ("bad trailer key"), so net/http's proxy
// answers 502. The relay must not pass on an answer its client cannot
// read: it must refuse it (or drop the declaration).
func TestRelayTrailerDeclaringFraming(t *testing.T) {
	for _, key := range []string{"Content-Length", "Transfer-Encoding", "Trailer"} {
		in := "HTTP/1.1 200 OK\r\nTrailer: " + key + "\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
		_, out, err := relayBytes([]byte(in), false, false)
		if errors.Is(err, ErrBadResponse) {
			continue
		}
		if err != nil {
			t.Errorf("Trailer: %s: %v", key, err)
			continue
		}
		if _, err := readClientView(out, false); err != nil {
			t.Errorf("Trailer: %s relayed as %q, which the client cannot read: %v", key, out, err)
		}
	}
}

// relayPipe runs relay on the client end of a net.Pipe whose other end
// writes upstream, with a read deadline on the upstream as Exchange.Relay
// sets one (the request timeout, the drain, a client that left).
func relayPipe(t *testing.T, upstream string, deadline time.Duration) (Response, []byte, error) {
	t.Helper()
	upC, upS := net.Pipe()
	t.Cleanup(func() { upC.Close(); upS.Close() })
	go func() { _, _ = upS.Write([]byte(upstream)) }()
	_ = upC.SetReadDeadline(time.Now().Add(deadline))
	var out bytes.Buffer
	w := bufio.NewWriter(&out)
	rl := relayer{drop: dropFlint}
	res, err := relayWith(&rl, bufio.NewReader(upC), w, false, false)
	_ = w.Flush()
	return res, out.Bytes(), err
}

// TestRelayDeadlineBetweenChunksEndsStream: a deadline between chunks ends
// the answer properly (an event-stream client then reconnects) but the
// upstream connection, mid-answer, is not reused.
func TestRelayDeadlineBetweenChunksEndsStream(t *testing.T) {
	res, out, err := relayPipe(t, sseHead+chunk("data: one\n\n"), 100*time.Millisecond)
	if err != errStreamCut {
		t.Fatalf("err = %v, want errStreamCut", err)
	}
	if !res.Started || res.Reusable {
		t.Errorf("Started %v Reusable %v, want true false", res.Started, res.Reusable)
	}
	v, err := readClientView(out, false)
	if err != nil {
		t.Fatalf("client cannot read %q: %v", out, err)
	}
	if string(v.body) != "data: one\n\n" || len(v.rest) > 0 {
		t.Errorf("body %q, then %q", v.body, v.rest)
	}
}

// TestRelayDeadlineClosedDelimitedEndsStream: likewise for a body the
// upstream would end by closing.
func TestRelayDeadlineCloseDelimitedEndsStream(t *testing.T) {
	res, out, err := relayPipe(t, "HTTP/1.1 200 OK\r\n\r\ndata: one\n\n", 100*time.Millisecond)
	if err != errStreamCut || res.Reusable {
		t.Fatalf("err = %v Reusable %v, want errStreamCut false", err, res.Reusable)
	}
	v, err := readClientView(out, false)
	if err != nil || string(v.body) != "data: one\n\n" {
		t.Fatalf("client reads %q: %q, %v", out, v.body, err)
	}
}

// TestRelayDeadlineInsideChunkIsAnError: inside a chunk the answer cannot
// end cleanly; the client must not be given a complete-looking answer.
func TestRelayDeadlineInsideChunkIsAnError(t *testing.T) {
	res, out, err := relayPipe(t, sseHead+"b\r\ndata: ", 100*time.Millisecond)
	if err == nil || err == errStreamCut || !res.Started {
		t.Fatalf("err = %v Started %v, want a deadline error after starting", err, res.Started)
	}
	if _, err := readClientView(out, false); err == nil {
		t.Errorf("client reads a complete answer from %q", out)
	}
}

// TestRelayDeadlineInHeadWritesNothing: before the final head nothing is
// written, so the caller can still answer (504).
func TestRelayDeadlineInHeadWritesNothing(t *testing.T) {
	res, out, err := relayPipe(t, "HTTP/1.1 200 OK\r\nContent-Le", 100*time.Millisecond)
	if !errors.Is(err, os.ErrDeadlineExceeded) || res.Started || len(out) > 0 {
		t.Fatalf("err = %v Started %v wrote %q", err, res.Started, out)
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("client left") }

// TestRelayClientErrorIsMarked: a client that left is not the upstream's
// fault; the caller tells them apart with IsClientError.
func TestRelayClientErrorIsMarked(t *testing.T) {
	for _, in := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n" + strings.Repeat("x", 5000),
		"HTTP/1.1 103 Early Hints\r\n\r\n" + okCL,
	} {
		rl := relayer{}
		_, err := relayWith(&rl, bufio.NewReader(strings.NewReader(in)), bufio.NewWriterSize(failWriter{}, 16), false, false)
		if !IsClientError(err) {
			t.Errorf("%.30q: err = %v, want a client error", in, err)
		}
	}
	if IsClientError(ErrBadResponse) {
		t.Errorf("ErrBadResponse taken for a client error")
	}
}

// TestRelayRefusedWritesNothing: an answer the refused hook takes back
// never reaches the client, and its short body is read so the upstream
// connection stays usable.
func TestRelayRefusedWritesNothing(t *testing.T) {
	for _, tc := range []struct {
		in       string
		reusable bool
	}{
		{"HTTP/1.1 503 Busy\r\nContent-Length: 4\r\n\r\nbusy", true},
		{"HTTP/1.1 503 Busy\r\nContent-Length: 40\r\n\r\nbusy", false},              // short body
		{"HTTP/1.1 503 Busy\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", false}, // not read
	} {
		var out bytes.Buffer
		w := bufio.NewWriter(&out)
		up := bufio.NewReader(strings.NewReader(tc.in))
		rl := relayer{refused: func(status int, _ []Field) bool { return status == 503 }}
		res, err := relayWith(&rl, up, w, false, false)
		_ = w.Flush()
		if !errors.Is(err, ErrRefused) || res.Started || out.Len() > 0 {
			t.Errorf("%q: err %v Started %v wrote %q", tc.in, err, res.Started, out.Bytes())
		}
		if res.Reusable != tc.reusable {
			t.Errorf("%q: Reusable %v, want %v", tc.in, res.Reusable, tc.reusable)
		}
		if res.Reusable && up.Buffered() > 0 {
			t.Errorf("%q: reusable with %d bytes unread", tc.in, up.Buffered())
		}
	}
}
