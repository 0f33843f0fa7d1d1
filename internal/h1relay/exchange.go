package h1relay

import (
	"bufio"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/flint-dev/flint/internal/forward"
)

// Exchange is one request the relay took, for the Handler to admit and
// send upstream, or to answer itself.
type Exchange struct {
	Head     Head
	Body     []byte
	RemoteIP string // the client's address, without the port
	// Admitted and State are the handler's own, for FinishLoop: when
	// AdmitLoop admitted the request, and whatever else it keeps (State
	// stays with the connection from one request to the next, for reuse).
	Admitted time.Duration
	State    any

	c        *clientConn
	close    bool
	consumed int
	note     any

	errHeader http.Header
}

func (ex *Exchange) reset() {
	ex.close, ex.consumed, ex.Body, ex.note, ex.Admitted = false, 0, nil, nil, 0
	clear(ex.errHeader)
}

// HandOff leaves note with the connection that ServeRelay, returning
// false, hands to the fallback server, which reads it with Note: what the
// relay already did for the request (an upstream that refused it).
func (ex *Exchange) HandOff(note any) { ex.note = note }

// Close makes the connection close after this answer (the answer says so).
func (ex *Exchange) Close() { ex.close = true }

// Closing reports whether the connection closes after this answer.
func (ex *Exchange) Closing() bool { return ex.close || ex.Head.Close }

// closingNow is Closing once a shutdown that began meanwhile is counted.
func (ex *Exchange) closingNow() bool {
	if ex.c.s.closing.Load() {
		ex.close = true
	}
	return ex.Closing()
}

// Upstream is how an exchange goes on upstream.
type Upstream struct {
	// DropResponse names answer headers and trailers not to pass back.
	DropResponse func(name []byte) bool
	// Refused, when set, is shown each final answer's status and header
	// section before anything of it goes to the client: true makes it a
	// refusal the handler deals with (another upstream), its body read and
	// dropped, and Relay returns ErrRefused.
	Refused func(status int, fields []Field) bool
	// Timeout bounds the whole exchange on the upstream connection (0: none).
	Timeout time.Duration
	// DialTimeout bounds connecting to the upstream on the event loops
	// (0: Timeout alone); goroutines dial with their transport's.
	DialTimeout time.Duration
}

// watchAfter is how long an exchange runs before the relay starts watching
// for its client leaving, which then cuts the exchange (net/http's server
// watches every request from the start, at a goroutine and two deadline
// changes each).
const watchAfter = 50 * time.Millisecond

// ErrRefused is an answer Upstream.Refused refused; nothing went to the client.
var ErrRefused = errors.New("upstream refused the request")

// ErrNoAnswer is an upstream connection that closed before any byte of an
// answer: on a reused connection, most likely closed while idle, so a
// replayable request may go again on another.
var ErrNoAnswer = errors.New("upstream closed the connection before answering")

// ErrClientGone is an exchange cut because its client left.
var ErrClientGone = errors.New("client closed the connection")

// Relay sends the request on up, whose head the handler has written to
// up.Writer() (WriteFields and the rest help), relays the answer to the
// client, and gives up back to its pool, or closes it when it cannot serve
// again. On an error before the answer started (Response.Started false)
// nothing was written and the handler answers, or sends the request again
// (Resend); after, the client's connection is closed.
func (ex *Exchange) Relay(up forward.RawConn, u *Upstream) (res Response, err error) {
	res, err = ex.exchange(up, u)
	res.Reused = up.Reused()
	if res.Reusable && (err == nil || err == ErrRefused) {
		up.Release()
	} else {
		up.Close()
	}
	return res, err
}

// Resend reports whether a request whose Relay failed may go again on
// another connection: forward.Transport's rule (and net/http's), a
// replayable request that met a reused connection the upstream had closed
// before any byte of an answer.
func (ex *Exchange) Resend(res Response, err error) bool {
	return errors.Is(err, ErrNoAnswer) && res.Reused && ex.Head.Replayable()
}

func (ex *Exchange) exchange(up forward.RawConn, u *Upstream) (Response, error) {
	c := ex.c
	nc := up.Conn()
	var deadline time.Time
	if u.Timeout > 0 {
		deadline = time.Now().Add(u.Timeout)
	}
	up.SetDeadline(deadline)
	c.setUpstream(nc)
	defer c.setUpstream(nil)
	w := up.Writer()
	_, _ = w.Write(ex.Body)
	if err := w.Flush(); err != nil {
		return Response{}, noAnswer(err)
	}
	return c.relayWatched(up.Reader(), u)
}

// relayWatched relays the answer from up to the client while watching
// for the client leaving: the goroutine's part of an exchange, from the
// answer's first byte.
func (c *clientConn) relayWatched(up *bufio.Reader, u *Upstream) (Response, error) {
	ex := &c.ex
	c.watch.start(c, nil)
	c.rl.drop, c.rl.refused = u.DropResponse, u.Refused
	res, err := c.rl.relay(up, c.bw, ex.Head.IsHead(), ex.closingNow)
	if c.watch.stop(c) {
		err = ErrClientGone
	}
	return ex.settle(res, err)
}

// settle is the relayer's outcome as Relay reports it: a stream the
// upstream cut at a message boundary ended well (but its connection
// cannot serve again), and an error once the answer started closes the
// client's connection.
func (ex *Exchange) settle(res Response, err error) (Response, error) {
	if err == errStreamCut {
		err, res.Reusable = nil, false
	}
	if err != nil && res.Started {
		ex.close = true
	}
	return res, err
}

// WriteRequestLine writes "METHOD target HTTP/1.1".
func (ex *Exchange) WriteRequestLine(w *bufio.Writer, target []byte) {
	_, _ = w.Write(ex.Head.Method)
	_ = w.WriteByte(' ')
	_, _ = w.Write(target)
	_, _ = w.WriteString(" HTTP/1.1\r\n")
}

// WriteFields writes the request's header lines but the hop-by-hop ones,
// X-Forwarded-For (WriteForwardedFor writes it) and those skip refuses.
func (ex *Exchange) WriteFields(w *bufio.Writer, skip func(Field) bool) {
	for _, f := range ex.Head.Fields {
		if isHopByHop(f.Name) || equalFold(f.Name, "X-Forwarded-For") || (skip != nil && skip(f)) {
			continue
		}
		f.Write(w)
	}
}

// WriteForwardedFor writes X-Forwarded-For: the request's own non-empty
// values joined when prior is set, then the client's address.
func (ex *Exchange) WriteForwardedFor(w *bufio.Writer, prior bool) {
	_, _ = w.WriteString("X-Forwarded-For: ")
	sep := false
	if prior {
		for _, f := range ex.Head.Fields {
			if len(f.Value) > 0 && equalFold(f.Name, "X-Forwarded-For") {
				if sep {
					_, _ = w.WriteString(", ")
				}
				_, _ = w.Write(f.Value)
				sep = true
			}
		}
	}
	if ex.RemoteIP != "" {
		if sep {
			_, _ = w.WriteString(", ")
		}
		_, _ = w.WriteString(ex.RemoteIP)
	}
	_, _ = w.WriteString("\r\n")
}

// WriteField writes one header line.
func WriteField(w *bufio.Writer, name string, value []byte) {
	_, _ = w.WriteString(name)
	_, _ = w.WriteString(": ")
	_, _ = w.Write(value)
	_, _ = w.WriteString("\r\n")
}

// Write writes the field as a header line.
func (f Field) Write(w *bufio.Writer) {
	_, _ = w.Write(f.Name)
	_, _ = w.WriteString(": ")
	_, _ = w.Write(f.Value)
	_, _ = w.WriteString("\r\n")
}

// Header is the header section of an answer the handler writes itself
// with Respond (errors, refusals).
func (ex *Exchange) Header() http.Header {
	if ex.errHeader == nil {
		ex.errHeader = http.Header{}
	}
	return ex.errHeader
}

// Respond writes a complete answer of the handler's own; it goes out when
// ServeRelay returns.
func (ex *Exchange) Respond(code int, body []byte) {
	w := ex.c.bw
	_, _ = w.Write(statusLine(code))
	for k, vs := range ex.errHeader {
		if strings.EqualFold(k, "Content-Length") || strings.EqualFold(k, "Connection") {
			continue
		}
		for _, v := range vs {
			_, _ = w.WriteString(k)
			_, _ = w.WriteString(": ")
			_, _ = w.WriteString(v)
			_, _ = w.WriteString("\r\n")
		}
	}
	if vs := ex.errHeader["Connection"]; len(vs) > 0 && strings.EqualFold(vs[0], "close") {
		ex.close = true
	}
	_, _ = w.WriteString("Date: ")
	_, _ = w.Write(httpDate())
	_, _ = w.WriteString("\r\nContent-Length: ")
	var num [20]byte
	_, _ = w.Write(strconv.AppendInt(num[:0], int64(len(body)), 10))
	if ex.Closing() {
		_, _ = w.WriteString("\r\nConnection: close")
	}
	_, _ = w.WriteString("\r\n\r\n")
	if !ex.Head.IsHead() {
		_, _ = w.Write(body)
	}
}

// ResponseWriter lets code written for net/http answer on the relay (an
// error, a refusal): it collects the answer and Send writes it whole.
type ResponseWriter struct {
	ex   *Exchange
	code int
	body []byte
}

// ResponseWriter starts an answer of the handler's own.
func (ex *Exchange) ResponseWriter() ResponseWriter { return ResponseWriter{ex: ex} }

func (w *ResponseWriter) Header() http.Header { return w.ex.Header() }

func (w *ResponseWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
}

func (w *ResponseWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	w.body = append(w.body, b...)
	return len(b), nil
}

// Status is the answer's status (200 when only a body was written).
func (w *ResponseWriter) Status() int { return w.code }

// Send writes the answer; 499 (the client left, nginx's convention)
// writes nothing and closes the connection.
func (w *ResponseWriter) Send() {
	if w.code == StatusClientClosed {
		w.ex.Close()
		return
	}
	w.ex.Respond(w.code, w.body)
}

// StatusClientClosed is the status recorded for a request whose client
// left before its answer.
const StatusClientClosed = 499
