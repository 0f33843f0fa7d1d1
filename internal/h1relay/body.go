package h1relay

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"
	"time"
)

// hopByHop are the headers net/http's reverse proxy removes in both
// directions (RFC 9110 §7.6.1 and the proxy-auth pair).
var hopByHop = [...]string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "Te", "Transfer-Encoding", "Upgrade"}

// IsHopByHop reports whether a header is this hop's alone.
func IsHopByHop(name []byte) bool { return isHopByHop(name) }

func isHopByHop(name []byte) bool {
	for _, h := range hopByHop {
		if equalFold(name, h) {
			return true
		}
	}
	return false
}

// connectionNames collects the header names a Connection field lists
// (other than close and keep-alive), which are this hop's alone.
func connectionNames(fields []Field, into [][]byte) [][]byte {
	for _, f := range fields {
		if !equalFold(f.Name, "Connection") {
			continue
		}
		for tok := range listTokens(f.Value) {
			if len(tok) > 0 && !equalFold(tok, "close") && !equalFold(tok, "keep-alive") {
				into = append(into, tok)
			}
		}
	}
	return into
}

func named(names [][]byte, name []byte) bool {
	for _, n := range names {
		if len(n) == len(name) && equalFold(name, string(n)) {
			return true
		}
	}
	return false
}

// writeHead writes a status line and the filtered header section; fr is
// nil for an interim answer.
func (rl *relayer) writeHead(w *bufio.Writer, code int, fr *framing, close bool) {
	_, _ = w.Write(statusLine(code))
	var namesBuf [8][]byte
	names := connectionNames(rl.fields, namesBuf[:0])
	date := false
	for i, f := range rl.fields {
		switch {
		case fr != nil && i == fr.lengthField:
			// The framing is the relay's: written whatever Connection names.
		case equalFold(f.Name, "Content-Length"), isHopByHop(f.Name), named(names, f.Name), rl.drop != nil && rl.drop(f.Name):
			continue
		case equalFold(f.Name, "Date"):
			date = true
		}
		_, _ = w.Write(f.Name)
		_, _ = w.WriteString(": ")
		_, _ = w.Write(f.Value)
		_, _ = w.WriteString("\r\n")
	}
	if fr != nil {
		if fr.chunked || (!fr.noBody && fr.length < 0) {
			_, _ = w.WriteString("Transfer-Encoding: chunked\r\n")
		}
		if !date {
			_, _ = w.WriteString("Date: ")
			_, _ = w.Write(httpDate())
			_, _ = w.WriteString("\r\n")
		}
		if close {
			_, _ = w.WriteString("Connection: close\r\n")
		}
	}
	_, _ = w.WriteString("\r\n")
}

// errStreamCut is an answer whose body this side ended early at a message
// boundary (a deadline on the upstream connection: the request timeout,
// the drain, or a client that left): the client saw a complete answer, the
// upstream connection is not reusable.
var errStreamCut = errors.New("stream ended early")

func isDeadline(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }

// copyN copies n body bytes, flushing w before each wait on up.
func copyN(w *bufio.Writer, up *bufio.Reader, n int64) error {
	for n > 0 {
		if up.Buffered() == 0 {
			if err := w.Flush(); err != nil {
				return clientError{err}
			}
			if _, err := up.Peek(1); err != nil {
				return noEOF(err)
			}
		}
		k := min(int64(up.Buffered()), n)
		p, _ := up.Peek(int(k))
		if _, err := w.Write(p); err != nil {
			return clientError{err}
		}
		_, _ = up.Discard(int(k))
		n -= k
	}
	return nil
}

// copyChunked relays a chunked body chunk by chunk (extensions dropped),
// then its trailer section, filtered as the header section is.
func (rl *relayer) copyChunked(w *bufio.Writer, up *bufio.Reader) error {
	var num [20]byte
	for {
		if err := flushUnlessBuffered(w, up, '\n'); err != nil {
			return err
		}
		rl.lines = rl.lines[:0]
		line, err := readLine(up, &rl.lines)
		if err != nil {
			if isDeadline(err) {
				// Between chunks: end the stream properly (an event-stream
				// client then reconnects, through the gateway, elsewhere).
				_, _ = w.WriteString("0\r\n\r\n")
				_ = w.Flush()
				return errStreamCut
			}
			return noEOF(err)
		}
		size, ok := chunkSize(line)
		if !ok {
			return fmt.Errorf("%w: chunk size line %q", ErrBadResponse, truncate(line))
		}
		if size == 0 {
			break
		}
		_, _ = w.Write(strconv.AppendInt(num[:0], size, 16))
		_, _ = w.WriteString("\r\n")
		if err := copyN(w, up, size); err != nil {
			return err
		}
		if up.Buffered() < 2 {
			if err := w.Flush(); err != nil {
				return clientError{err}
			}
		}
		crlf, err := up.Peek(2)
		if err != nil {
			return noEOF(err)
		}
		if crlf[0] != '\r' || crlf[1] != '\n' {
			return fmt.Errorf("%w: chunk not followed by CRLF", ErrBadResponse)
		}
		_, _ = up.Discard(2)
		_, _ = w.WriteString("\r\n")
	}
	_, _ = w.WriteString("0\r\n")
	rl.lines = rl.lines[:0]
	for {
		if err := flushUnlessBuffered(w, up, '\n'); err != nil {
			return err
		}
		line, err := readLine(up, &rl.lines)
		if err != nil {
			return noEOF(err)
		}
		if len(line) == 0 {
			break
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 || !isToken(line[:colon]) || !validValue(line[colon+1:]) {
			return fmt.Errorf("%w: trailer line %q", ErrBadResponse, truncate(line))
		}
		if isHopByHop(line[:colon]) || framingField(line[:colon]) || (rl.drop != nil && rl.drop(line[:colon])) {
			continue
		}
		_, _ = w.Write(line)
		_, _ = w.WriteString("\r\n")
	}
	_, _ = w.WriteString("\r\n")
	return nil
}

// flushUnlessBuffered flushes w unless up already holds a byte c: what
// the client has been sent must not wait on a read that may block (an
// upstream that paused mid-line, between events).
func flushUnlessBuffered(w *bufio.Writer, up *bufio.Reader, c byte) error {
	if n := up.Buffered(); n > 0 {
		if p, _ := up.Peek(n); bytes.IndexByte(p, c) >= 0 {
			return nil
		}
	}
	if err := w.Flush(); err != nil {
		return clientError{err}
	}
	return nil
}

// framingField names the fields RFC 9110 §6.5.1 keeps out of trailers
// (framing and routing), which a Go client refuses to see declared there.
func framingField(name []byte) bool {
	return equalFold(name, "Content-Length") || equalFold(name, "Transfer-Encoding") || equalFold(name, "Trailer") ||
		equalFold(name, "Host")
}

// chunkSize reads a chunk-size line: hex digits, then optional whitespace
// and extensions, which are dropped.
func chunkSize(line []byte) (int64, bool) {
	var n int64
	i := 0
	for ; i < len(line) && isHex(line[i]); i++ {
		if i == 15 {
			return 0, false
		}
		c := line[i]
		switch {
		case c <= '9':
			c -= '0'
		case c >= 'a':
			c -= 'a' - 10
		default:
			c -= 'A' - 10
		}
		n = n<<4 | int64(c)
	}
	if i == 0 {
		return 0, false
	}
	rest := trimOWS(line[i:])
	if len(rest) > 0 && (rest[0] != ';' || !validValue(rest)) {
		return 0, false
	}
	return n, true
}

// copyUntilEOF relays a body that ends when the upstream closes, as chunks.
func copyUntilEOF(w *bufio.Writer, up *bufio.Reader) error {
	var num [20]byte
	for {
		if up.Buffered() == 0 {
			if err := w.Flush(); err != nil {
				return clientError{err}
			}
			if _, err := up.Peek(1); err != nil {
				switch {
				case err == io.EOF:
					_, _ = w.WriteString("0\r\n\r\n")
					return nil
				case isDeadline(err):
					_, _ = w.WriteString("0\r\n\r\n")
					_ = w.Flush()
					return errStreamCut
				}
				return err
			}
		}
		p, _ := up.Peek(up.Buffered())
		_, _ = w.Write(strconv.AppendInt(num[:0], int64(len(p)), 16))
		_, _ = w.WriteString("\r\n")
		if _, err := w.Write(p); err != nil {
			return clientError{err}
		}
		_, _ = w.WriteString("\r\n")
		_, _ = up.Discard(len(p))
	}
}

// statusLines holds "HTTP/1.1 <code> <text>\r\n" for every code, with
// net/http's texts ("status code N" for codes it does not name).
var statusLines = func() (t [1000][]byte) {
	for code := 100; code < 1000; code++ {
		text := http.StatusText(code)
		if text == "" {
			text = "status code " + strconv.Itoa(code)
		}
		t[code] = []byte("HTTP/1.1 " + strconv.Itoa(code) + " " + text + "\r\n")
	}
	return t
}()

func statusLine(code int) []byte { return statusLines[code] }

// httpDate is the current time in the Date header's format, formatted at
// most once a second.
func httpDate() []byte {
	now := time.Now().Unix()
	if d := cachedDate.Load(); d != nil && d.unix == now {
		return d.text
	}
	d := &dateText{unix: now, text: []byte(time.Unix(now, 0).UTC().Format(http.TimeFormat))}
	cachedDate.Store(d)
	return d.text
}

type dateText struct {
	unix int64
	text []byte
}

var cachedDate atomic.Pointer[dateText]
