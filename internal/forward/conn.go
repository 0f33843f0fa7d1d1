package forward

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"sync"
	"syscall"
	"time"
)

// errNoResponse marks a request the upstream closed the connection on
// before any byte of an answer: on a kept-alive connection, the upstream
// most likely closed it while it was idle.
var errNoResponse = errors.New("forward: upstream closed the connection before answering")

// max1xx bounds the informational responses before the final one, as
// net/http does.
const max1xx = 5

var aLongTimeAgo = time.Unix(1, 0)

// conn is one persistent connection to an upstream. Only the goroutine
// that took it from the pool uses it (and, while a request body streams,
// the body writer uses bw).
type conn struct {
	p        *pool
	nc       net.Conn
	raw      syscall.RawConn // for the liveness peek; nil if nc has no fd
	br       *bufio.Reader
	bw       *bufio.Writer
	limit    int64 // bytes the reader may still read: the header limit while headers are read
	reused   bool
	deadline bool // set by a RawConn borrower, cleared before RoundTrip's next use
	idleAt   time.Time

	asyncBody bool // the current request's body streams from writeBody

	bodyDone  chan error // the request body writer's result
	closeOnce sync.Once
	peekN     int
	peekErr   error
	peekFn    func(fd uintptr) bool
	cutFn     func()
	peekBuf   [1]byte // MSG_PEEK leaves the byte in the socket; its value is never used
}

func newConn(p *pool, nc net.Conn) *conn {
	c := &conn{p: p, nc: nc, limit: math.MaxInt64, bodyDone: make(chan error, 1)}
	c.cutFn = c.cut // once per connection, not per request
	c.br = bufio.NewReaderSize(limitedReader{c}, bufSize(p.t.ReadBufferSize))
	c.bw = bufio.NewWriterSize(nc, bufSize(p.t.WriteBufferSize))
	if sc, ok := nc.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			c.raw = raw
			c.peekFn = c.peek
		}
	}
	return c
}

func bufSize(n int) int {
	if n <= 0 {
		return 4 << 10
	}
	return n
}

// limitedReader enforces the response header limit under the bufio.Reader.
type limitedReader struct{ c *conn }

func (r limitedReader) Read(p []byte) (int, error) {
	if r.c.limit <= 0 {
		return 0, errHeaderTooLarge{r.c.p.t.maxHeaderBytes()}
	}
	if int64(len(p)) > r.c.limit {
		p = p[:r.c.limit]
	}
	n, err := r.c.nc.Read(p)
	r.c.limit -= int64(n)
	return n, err
}

type errHeaderTooLarge struct{ limit int64 }

func (e errHeaderTooLarge) Error() string {
	return fmt.Sprintf("forward: upstream response headers exceeded %d bytes; aborted", e.limit)
}

func (t *Transport) maxHeaderBytes() int64 {
	if t.MaxResponseHeaderBytes > 0 {
		return t.MaxResponseHeaderBytes
	}
	return defaultMaxHeaderBytes
}

// usable reports whether an idle connection is still open and quiet: an
// upstream that closed it (its own idle timeout) or wrote to it unasked
// must not get the next request, which might not be replayable.
func (c *conn) usable() bool {
	if c.br.Buffered() > 0 {
		return false
	}
	if c.raw == nil {
		return true
	}
	c.peekN, c.peekErr = 0, nil
	if err := c.raw.Read(c.peekFn); err != nil {
		return false
	}
	return c.peekErr == syscall.EAGAIN
}

func (c *conn) peek(fd uintptr) bool {
	c.peekN, _, c.peekErr = syscall.Recvfrom(int(fd), c.peekBuf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	return true // never wait: EAGAIN is the answer wanted
}

func (c *conn) close() { c.closeOnce.Do(func() { _ = c.nc.Close() }) }

// cut wakes whatever blocks on the connection; it is never reused after.
func (c *conn) cut() { _ = c.nc.SetDeadline(aLongTimeAgo) }

// roundTrip writes req and reads the response's header. On error the
// connection is closed.
func (c *conn) roundTrip(req *http.Request) (*http.Response, error) {
	if c.deadline {
		_ = c.nc.SetDeadline(time.Time{})
		c.deadline = false
	}
	ctx := req.Context()
	var stop func() bool
	if ctx.Done() != nil {
		if err := ctx.Err(); err != nil {
			c.p.put(c)
			return nil, err
		}
		stop = context.AfterFunc(ctx, c.cutFn)
	}
	res, err := c.exchange(req)
	if err != nil {
		if stop != nil {
			stop()
		}
		c.close()
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, fmt.Errorf("forward: %w (%v)", ctxErr, err)
		}
		return nil, err
	}
	b := &body{c: c, rc: res.Body, req: req, res: res, stop: stop, asyncBody: c.asyncBody}
	if res.Body == http.NoBody {
		b.finish(true)
		return res, nil
	}
	res.Body = b
	return res, nil
}

func (c *conn) exchange(req *http.Request) (*http.Response, error) {
	withBody := hasBody(req)
	chunked := withBody && req.ContentLength <= 0
	c.writeHead(req, withBody, chunked)
	c.asyncBody = withBody && (chunked || req.ContentLength > int64(c.bw.Available()))
	switch {
	case c.asyncBody:
		go c.writeBody(req, chunked)
	case withBody:
		// A body that fits the buffer goes out with the header in one
		// write, as net/http's transport sends it (it, too, flushes a
		// buffered body only at its end), without a goroutine.
		buf := c.bw.AvailableBuffer()[:req.ContentLength]
		if n, err := io.ReadFull(req.Body, buf); err != nil {
			if err == io.ErrUnexpectedEOF || err == io.EOF {
				err = fmt.Errorf("forward: request body ended %d bytes short of its Content-Length", req.ContentLength-int64(n))
			}
			return nil, err
		}
		c.bw.Write(buf)
		fallthrough
	default:
		if err := c.bw.Flush(); err != nil {
			return nil, c.noResponse(err)
		}
	}
	res, err := c.readResponse(req)
	if err != nil && c.asyncBody {
		// A failed body (a client that went away, or trickled: 408) closes
		// the connection, so the read fails too; the body's error says why.
		select {
		case werr := <-c.bodyDone:
			c.bodyDone <- werr // finish looks again
			var be bodyError
			if errors.As(werr, &be) {
				return nil, be.err
			}
		default:
		}
	}
	return res, err
}

// readResponse reads the final response's header, handing 1xx answers to
// the request's httptrace.ClientTrace (ReverseProxy forwards them).
func (c *conn) readResponse(req *http.Request) (*http.Response, error) {
	if _, err := c.br.Peek(1); err != nil {
		return nil, c.noResponse(err)
	}
	var trace *httptrace.ClientTrace
	for n1xx := 0; ; n1xx++ {
		c.limit = c.p.t.maxHeaderBytes() - int64(c.br.Buffered())
		res, err := http.ReadResponse(c.br, req)
		c.limit = math.MaxInt64
		if err != nil {
			var tooLarge errHeaderTooLarge
			if errors.As(err, &tooLarge) {
				return nil, tooLarge
			}
			return nil, fmt.Errorf("forward: reading the upstream's response: %w", err)
		}
		code := res.StatusCode
		if code >= 200 {
			return res, nil
		}
		if code == http.StatusSwitchingProtocols {
			return nil, errors.New("forward: upstream switched protocols without being asked to")
		}
		if n1xx >= max1xx {
			return nil, errors.New("forward: too many 1xx informational responses")
		}
		if trace == nil {
			trace = httptrace.ContextClientTrace(req.Context())
		}
		if trace != nil && trace.Got1xxResponse != nil {
			if err := trace.Got1xxResponse(code, textproto.MIMEHeader(res.Header)); err != nil {
				return nil, err
			}
		}
	}
}

// noResponse classifies a failure before the first byte of an answer.
func (c *conn) noResponse(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return fmt.Errorf("%w: %w", errNoResponse, err)
	}
	return err
}

func hasBody(req *http.Request) bool { return req.Body != nil && req.Body != http.NoBody }
