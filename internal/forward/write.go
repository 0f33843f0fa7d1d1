package forward

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/net/http/httpguts"
)

// validate refuses what net/http's Transport refuses to write: header
// names and values that would change the request's framing.
func validate(req *http.Request) error {
	for k, vs := range req.Header {
		if !httpguts.ValidHeaderFieldName(k) {
			return fmt.Errorf("forward: invalid header field name %q", k)
		}
		for _, v := range vs {
			if !httpguts.ValidHeaderFieldValue(v) {
				return fmt.Errorf("forward: invalid header field value for %q", k)
			}
		}
	}
	if !httpguts.ValidHostHeader(host(req)) {
		return errors.New("forward: invalid Host header")
	}
	if req.ContentLength > 0 && !hasBody(req) {
		return fmt.Errorf("forward: ContentLength=%d with no Body", req.ContentLength)
	}
	return nil
}

func host(req *http.Request) string {
	if req.Host != "" {
		return req.Host
	}
	return req.URL.Host
}

// writeHead writes the request line and header section into bw, in the
// framing the body will be written with.
func (c *conn) writeHead(req *http.Request, withBody, chunked bool) {
	w := c.bw
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	w.WriteString(method)
	w.WriteByte(' ')
	writeRequestURI(w, req)
	w.WriteString(" HTTP/1.1\r\nHost: ")
	w.WriteString(host(req))
	w.WriteString("\r\n")
	for k, vs := range req.Header {
		switch k {
		case "Host", "Content-Length", "Transfer-Encoding", "Trailer":
			continue // written below from the request's own fields
		case "User-Agent":
			if len(vs) == 1 && vs[0] == "" {
				continue // ReverseProxy's way of saying "none"
			}
		}
		for _, v := range vs {
			w.WriteString(k)
			w.WriteString(": ")
			w.WriteString(v)
			w.WriteString("\r\n")
		}
	}
	switch {
	case chunked:
		w.WriteString("Transfer-Encoding: chunked\r\n")
		if len(req.Trailer) > 0 {
			w.WriteString("Trailer: ")
			first := true
			for k := range req.Trailer {
				if !first {
					w.WriteByte(',')
				}
				first = false
				w.WriteString(k)
			}
			w.WriteString("\r\n")
		}
	case withBody:
		w.WriteString("Content-Length: ")
		w.Write(strconv.AppendInt(w.AvailableBuffer(), req.ContentLength, 10))
		w.WriteString("\r\n")
	case req.Method == http.MethodPost || req.Method == http.MethodPut || req.Method == http.MethodPatch:
		w.WriteString("Content-Length: 0\r\n")
	}
	if req.Close {
		w.WriteString("Connection: close\r\n")
	}
	w.WriteString("\r\n")
}

func writeRequestURI(w interface {
	WriteString(string) (int, error)
	WriteByte(byte) error
}, req *http.Request) {
	u := req.URL
	if u.Opaque != "" {
		w.WriteString(u.RequestURI())
		return
	}
	p := u.EscapedPath()
	if p == "" {
		p = "/"
	}
	w.WriteString(p)
	if u.ForceQuery || u.RawQuery != "" {
		w.WriteByte('?')
		w.WriteString(u.RawQuery)
	}
}

// bodyError is a failure reading the request body (the client's side), as
// opposed to writing it to the upstream.
type bodyError struct{ err error }

func (e bodyError) Error() string { return e.err.Error() }
func (e bodyError) Unwrap() error { return e.err }

const copyBufferSize = 32 << 10

var copyBuffers = sync.Pool{New: func() any { return new([copyBufferSize]byte) }}

// writeBody streams the request body, flushing after every read so that
// the upstream sees what has arrived (full duplex: it may be answering
// already). Its result goes to c.bodyDone, and a failed write keeps the
// connection out of the pool. When the client's body fails (gone,
// trickled, short) the connection is cut too, or the response read would
// wait for an upstream that waits for the rest of the body; a failed
// write is the upstream closing its side, whose answer (an early 413) may
// still be arriving and is read to its end.
func (c *conn) writeBody(req *http.Request, chunked bool) {
	buf := copyBuffers.Get().(*[copyBufferSize]byte)
	err := c.copyBody(req, chunked, buf[:])
	copyBuffers.Put(buf)
	c.bodyDone <- err
	var be bodyError
	if errors.As(err, &be) {
		c.cut()
	}
}

func (c *conn) copyBody(req *http.Request, chunked bool, buf []byte) error {
	w := c.bw
	remaining := req.ContentLength
	for {
		p := buf
		if !chunked && int64(len(p)) > remaining {
			p = p[:remaining]
		}
		n, rerr := req.Body.Read(p)
		if n > 0 {
			if chunked {
				w.Write(strconv.AppendInt(w.AvailableBuffer(), int64(n), 16))
				w.WriteString("\r\n")
			}
			w.Write(p[:n])
			if chunked {
				w.WriteString("\r\n")
			}
			remaining -= int64(n)
			if err := w.Flush(); err != nil {
				return err
			}
		}
		switch {
		case !chunked && remaining == 0:
			return nil
		case rerr == io.EOF && chunked:
			return c.endChunked(req)
		case rerr == io.EOF:
			return bodyError{fmt.Errorf("forward: request body ended %d bytes short of its Content-Length", remaining)}
		case rerr != nil:
			return bodyError{rerr}
		}
	}
}

// endChunked writes the last chunk and the request's trailers, which the
// server has filled in by the time the body reached its end.
func (c *conn) endChunked(req *http.Request) error {
	w := c.bw
	w.WriteString("0\r\n")
	for k, vs := range req.Trailer {
		if !httpguts.ValidHeaderFieldName(k) {
			continue
		}
		for _, v := range vs {
			if httpguts.ValidHeaderFieldValue(v) {
				w.WriteString(k)
				w.WriteString(": ")
				w.WriteString(strings.TrimSpace(v))
				w.WriteString("\r\n")
			}
		}
	}
	w.WriteString("\r\n")
	return w.Flush()
}
