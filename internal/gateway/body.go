package gateway

import (
	"errors"
	"io"
	"sync"
)

var errStaleAttempt = errors.New("request body belongs to an abandoned attempt")

// replayBody lets a request body be sent again to another replica. It keeps
// what it has read from the client up to a limit; an attempt reads that
// prefix first, then continues from the client. Once more than the limit
// has been read the body can no longer be replayed.
//
// The transport may still be writing an abandoned attempt's body when the
// next attempt starts, so every read names its attempt and stale ones fail.
type replayBody struct {
	mu       sync.Mutex
	src      io.ReadCloser
	buf      []byte
	limit    int
	overflow bool
	attempt  int
}

func newReplayBody(src io.ReadCloser, limit int) *replayBody {
	return &replayBody{src: src, limit: limit}
}

// replayable reports whether everything read so far is kept.
func (b *replayBody) replayable() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return !b.overflow
}

// next starts a new attempt and returns its reader.
func (b *replayBody) next() io.ReadCloser {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.attempt++
	return &attemptBody{b: b, attempt: b.attempt}
}

type attemptBody struct {
	b       *replayBody
	attempt int
	off     int
}

func (a *attemptBody) Read(p []byte) (int, error) {
	b := a.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if a.attempt != b.attempt {
		return 0, errStaleAttempt
	}
	if a.off < len(b.buf) {
		n := copy(p, b.buf[a.off:])
		a.off += n
		return n, nil
	}
	n, err := b.src.Read(p)
	if err != nil && err != io.EOF {
		err = &clientBodyError{err}
	}
	if n > 0 && !b.overflow {
		if len(b.buf)+n <= b.limit {
			b.buf = append(b.buf, p[:n]...)
			a.off += n
		} else {
			b.overflow, b.buf = true, nil
		}
	}
	return n, err
}

// clientBodyError is a failure to read the client's request body (cut
// short, malformed chunked framing, over the size limit): the client's
// fault, not the replica's, and answered as such (errors.go).
type clientBodyError struct{ err error }

func (e *clientBodyError) Error() string { return "reading the request body: " + e.err.Error() }
func (e *clientBodyError) Unwrap() error { return e.err }

// Close is a no-op: the transport closes each attempt's body, but the
// client's body must stay open for the next attempt; the server closes it.
func (a *attemptBody) Close() error { return nil }
