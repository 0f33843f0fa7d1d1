// Package h1relay serves plain HTTP/1.1 requests by relaying their bytes to
// an upstream connection, without net/http's per-request machinery (a
// Request and its header map, a context, a response writer, a background
// read goroutine per request, two read-deadline changes): on a 2-core
// machine that machinery costs about as much CPU per request as the whole
// of an nginx hop (issue 19, docs/benchmarks.md).
//
// It takes only the requests it parses completely and strictly: HTTP/1.1,
// an origin-form target in a conservative alphabet, well-formed header
// lines, one Host, at most one Content-Length and a small body, and none of
// Transfer-Encoding, Upgrade, Expect, Trailer, TE, HTTP2-Settings or a
// Connection header naming anything but keep-alive or close. At the first
// request it does not take, the connection, with every byte read and not
// yet served, goes to a net/http server, which serves it from then on, so
// everything unusual keeps net/http's behaviour.
package h1relay

import (
	"bytes"
	"iter"

	"golang.org/x/net/http/httpguts"
)

// MaxBody is the largest request body the relay takes; a request with a
// larger one goes to net/http, which streams it.
const MaxBody = 64 << 10

// maxFields bounds the header lines of a request or response the relay
// takes; it is also the size of Head.Fields' array.
const maxFields = 64

// Field is one header line, both slices pointing into the read buffer.
type Field struct {
	Name, Value []byte
}

// Head is a request head the relay takes. Its slices point into the
// connection's read buffer and are valid until the body has been read.
type Head struct {
	Method, Target []byte
	Host           []byte
	Fields         []Field // every header line in order, Host included
	ContentLength  int64   // 0 when absent
	Close          bool    // Connection: close
	fields         [maxFields]Field
}

// Get is the first value of the named header (ASCII case-insensitive), and
// whether there was one.
func (h *Head) Get(name string) ([]byte, bool) {
	for _, f := range h.Fields {
		if equalFold(f.Name, name) {
			return f.Value, true
		}
	}
	return nil, false
}

// IsHead reports a HEAD request, whose answer has no body.
func (h *Head) IsHead() bool { return string(h.Method) == "HEAD" }

// Replayable is net/http's rule (and forward's) for a request that may be
// sent again when a reused connection failed before any answer: no body,
// and a method that makes sending it twice harmless, or an idempotency key.
func (h *Head) Replayable() bool {
	if h.ContentLength > 0 {
		return false
	}
	switch string(h.Method) {
	case "GET", "HEAD", "OPTIONS", "TRACE":
		return true
	}
	_, k1 := h.Get("Idempotency-Key")
	_, k2 := h.Get("X-Idempotency-Key")
	return k1 || k2
}

// parseHead parses the request head in b, which ends with the blank line.
// It reports false for any request the relay does not take.
func parseHead(b []byte, h *Head) bool {
	*h = Head{Fields: h.fields[:0]}
	line, rest, ok := cutLine(b)
	if !ok {
		return false
	}
	sp := bytes.IndexByte(line, ' ')
	if sp <= 0 || !isToken(line[:sp]) || string(line[:sp]) == "CONNECT" {
		return false // CONNECT's answer would turn the connection into a tunnel
	}
	h.Method = line[:sp]
	line = line[sp+1:]
	const proto = " HTTP/1.1"
	if len(line) <= len(proto) || string(line[len(line)-len(proto):]) != proto {
		return false
	}
	h.Target = line[:len(line)-len(proto)]
	if !validTarget(h.Target) {
		return false
	}
	hosts := 0
	lengths := 0
	for {
		line, rest, ok = cutLine(rest)
		if !ok {
			return false
		}
		if len(line) == 0 {
			break
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 || len(h.Fields) == maxFields {
			return false
		}
		name, value := line[:colon], trimOWS(line[colon+1:])
		if !isToken(name) || !validValue(value) {
			return false
		}
		switch {
		case equalFold(name, "Host"):
			hosts++
			if !httpguts.ValidHostHeader(string(value)) {
				return false
			}
			h.Host = value
		case equalFold(name, "Content-Length"):
			lengths++
			n, ok := parseLength(value)
			if !ok || n > MaxBody {
				return false
			}
			h.ContentLength = n
		case equalFold(name, "Connection"):
			close, ok := plainConnection(value)
			if !ok {
				return false
			}
			h.Close = h.Close || close
		case refused(name):
			return false
		}
		h.Fields = append(h.Fields, Field{Name: name, Value: value})
	}
	return hosts == 1 && lengths <= 1 && len(rest) == 0
}

// refused names the headers whose requests net/http serves: each changes
// the framing or the connection (Transfer-Encoding, Upgrade and
// HTTP2-Settings, Expect's interim answer, Trailer, TE), or is hop-by-hop
// (Keep-Alive, Proxy-Connection) and rare enough not to be worth a rule.
func refused(name []byte) bool {
	switch len(name) {
	case 2:
		return equalFold(name, "TE")
	case 6:
		return equalFold(name, "Expect")
	case 7:
		return equalFold(name, "Upgrade") || equalFold(name, "Trailer")
	case 10:
		return equalFold(name, "Keep-Alive")
	case 14:
		return equalFold(name, "HTTP2-Settings")
	case 16:
		return equalFold(name, "Proxy-Connection")
	case 17:
		return equalFold(name, "Transfer-Encoding")
	}
	return false
}

// plainConnection reads a Connection value that names only keep-alive or
// close; ok is false when it names anything else (a header the client
// wants dropped at this hop, an upgrade).
func plainConnection(v []byte) (close, ok bool) {
	for tok := range listTokens(v) {
		switch {
		case len(tok) == 0:
		case equalFold(tok, "close"):
			close = true
		case equalFold(tok, "keep-alive"):
		default:
			return false, false
		}
	}
	return close, true
}

// listTokens yields the elements of a comma-separated header value, each
// without the whitespace around it (empty ones included).
func listTokens(v []byte) iter.Seq[[]byte] {
	return func(yield func([]byte) bool) {
		for len(v) > 0 {
			tok, rest, _ := bytes.Cut(v, []byte{','})
			if !yield(trimOWS(tok)) {
				return
			}
			v = rest
		}
	}
}

// cutLine splits off one CRLF-terminated line. A bare LF or CR is not one.
func cutLine(b []byte) (line, rest []byte, ok bool) {
	i := bytes.IndexByte(b, '\n')
	if i < 1 || b[i-1] != '\r' {
		return nil, nil, false
	}
	line = b[:i-1]
	if bytes.IndexByte(line, '\r') >= 0 {
		return nil, nil, false
	}
	return line, b[i+1:], true
}

// validTarget accepts origin-form targets in the alphabet that net/http's
// reverse proxy would forward unchanged: a path of unreserved characters,
// sub-delimiters, ':', '@', '/' and well-formed percent escapes, then an
// optional query of visible ASCII other than '#'. Anything else (a
// fragment, a raw quote, non-ASCII, "//" at the start, '*') goes to
// net/http.
func validTarget(t []byte) bool {
	if len(t) == 0 || t[0] != '/' || (len(t) > 1 && t[1] == '/') {
		return false
	}
	i := 0
	for ; i < len(t) && t[i] != '?'; i++ {
		c := t[i]
		switch {
		case pathChar[c]:
		case c == '%':
			if i+2 >= len(t) || !isHex(t[i+1]) || !isHex(t[i+2]) {
				return false
			}
			i += 2
		default:
			return false
		}
	}
	for ; i < len(t); i++ {
		if c := t[i]; c <= ' ' || c >= 0x7f || c == '#' {
			return false
		}
	}
	return true
}

var pathChar = func() (t [256]bool) {
	for _, c := range []byte("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=:@/") {
		t[c] = true
	}
	return t
}()

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// parseLength reads a Content-Length value: digits only, at most 18.
func parseLength(v []byte) (int64, bool) {
	if len(v) == 0 || len(v) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

func isToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !httpguts.IsTokenRune(rune(c)) {
			return false
		}
	}
	return true
}

// validValue: visible ASCII, obs-text, spaces and tabs; no control bytes.
func validValue(v []byte) bool {
	for _, c := range v {
		if c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// EqualFold compares a header name with an ASCII name, ignoring case.
func EqualFold(b []byte, name string) bool { return equalFold(b, name) }

// equalFold compares b with an ASCII name, ignoring case.
func equalFold(b []byte, name string) bool {
	if len(b) != len(name) {
		return false
	}
	for i := 0; i < len(b); i++ {
		c, d := b[i], name[i]
		if c == d {
			continue
		}
		if c|0x20 != d|0x20 || c|0x20 < 'a' || c|0x20 > 'z' {
			return false
		}
	}
	return true
}
