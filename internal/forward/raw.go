package forward

import (
	"bufio"
	"context"
	"net"
	"time"
)

// RawConn is a pooled connection lent out as bytes, for a caller that
// writes the request and reads the answer itself (internal/h1relay): it
// shares the transport's pool, idle timeout and liveness check with
// RoundTrip. Exactly one of Release and Close ends the loan.
type RawConn struct {
	c *conn
}

// Raw lends an idle connection to addr that is still open, or dials one.
func (t *Transport) Raw(ctx context.Context, addr string) (RawConn, error) {
	c, err := t.pool(addr).get(ctx)
	if err != nil {
		return RawConn{}, err
	}
	return RawConn{c: c}, nil
}

// Reader and Writer are the connection's buffers.
func (r RawConn) Reader() *bufio.Reader { return r.c.br }
func (r RawConn) Writer() *bufio.Writer { return r.c.bw }

// Conn is the network connection.
func (r RawConn) Conn() net.Conn { return r.c.nc }

// SetDeadline bounds the exchange. RoundTrip, which takes the same pooled
// connections and bounds its requests by their contexts, clears it.
func (r RawConn) SetDeadline(t time.Time) {
	_ = r.c.nc.SetDeadline(t)
	r.c.deadline = !t.IsZero()
}

// Reused reports whether the connection served an earlier request: a
// request that meets a connection the upstream closed while it was idle
// may be sent again on a fresh one when nothing of an answer came back.
func (r RawConn) Reused() bool { return r.c.reused }

// Release returns the connection to the pool; the caller has read the
// whole answer and nothing else is buffered.
func (r RawConn) Release() { r.c.p.put(r.c) }

// Close closes the connection (an answer not read to its end, a framing the
// caller cannot reuse, an error).
func (r RawConn) Close() { r.c.close() }
