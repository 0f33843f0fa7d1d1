package forward

import (
	"errors"
	"io"
	"net/http"
	"sync"
	"time"
)

var errBodyClosed = errors.New("forward: read on a closed response body")

// body is a response body. The connection goes back to the pool when the
// body was read to its end, the request body was written whole and
// neither side asked to close; any other ending closes the connection, so
// a cut stream is never taken for a complete one and an unread rest never
// reaches the next request.
type body struct {
	c         *conn
	rc        io.ReadCloser
	req       *http.Request
	res       *http.Response
	stop      func() bool // unregisters the context's cut
	asyncBody bool        // the request body streams from writeBody, which reports to c.bodyDone

	mu      sync.Mutex
	reading bool
	closed  bool // Close was called
	done    bool // the connection was returned or closed
	eof     bool // the body was read to its end
}

func (b *body) Read(p []byte) (int, error) {
	b.mu.Lock()
	if b.eof && !b.closed {
		b.mu.Unlock()
		return 0, io.EOF // again, as any reader at its end
	}
	if b.done || b.closed {
		b.mu.Unlock()
		return 0, errBodyClosed
	}
	b.reading = true
	b.mu.Unlock()

	n, err := b.rc.Read(p)

	b.mu.Lock()
	defer b.mu.Unlock()
	b.reading = false
	switch {
	case b.closed:
		b.finish(false)
	case err == io.EOF:
		b.eof = true
		b.finish(true)
	case err != nil:
		if ctxErr := b.req.Context().Err(); ctxErr != nil {
			err = ctxErr
		}
		b.finish(false)
	}
	return n, err
}

// Close ends the body. Called while another goroutine reads (a stream cut
// by a drain), it wakes that read, which then closes the connection.
func (b *body) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed || b.done {
		b.closed = true
		return nil
	}
	b.closed = true
	if b.reading {
		b.c.cut()
		return nil
	}
	b.finish(false)
	return nil
}

// finish returns the connection to the pool when clean allows it, or
// closes it. Only the first call counts.
func (b *body) finish(clean bool) {
	if b.done {
		return
	}
	b.done = true
	c := b.c
	if b.stop != nil && !b.stop() {
		clean = false // the context cut the connection
	}
	if b.asyncBody {
		select {
		case err := <-c.bodyDone:
			clean = clean && err == nil
		default:
			clean = clean && c.waitBodyWritten()
		}
	}
	if clean && !b.res.Close && !b.req.Close {
		c.p.put(c)
		return
	}
	c.close()
}

// maxWriteWait is how long a connection whose response ended cleanly waits
// for its request body's writer to report, as net/http's transport does
// (maxWriteWaitBeforeConnReuse): the writer may just not have run since
// its last write. Past it, the upstream answered without reading the whole
// body, and the connection is closed.
const maxWriteWait = 50 * time.Millisecond

func (c *conn) waitBodyWritten() bool {
	t := time.NewTimer(maxWriteWait)
	defer t.Stop()
	select {
	case err := <-c.bodyDone:
		return err == nil
	case <-t.C:
		return false
	}
}
