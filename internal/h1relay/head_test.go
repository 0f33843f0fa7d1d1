package h1relay

import (
	"bufio"
	"bytes"
	"maps"
	"net/http"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/net/http/httpguts"
)

// head joins request-head lines with CRLF and ends them with the blank line.
func head(lines ...string) string {
	return strings.Join(lines, "\r\n") + "\r\n\r\n"
}

// withFields is a GET head with n header lines, Host the first of them.
func withFields(n int) string {
	lines := []string{"GET / HTTP/1.1", "Host: a"}
	for i := 1; i < n; i++ {
		lines = append(lines, "X-F"+strconv.Itoa(i)+": v")
	}
	return head(lines...)
}

// acceptedHeads are requests the relay serves itself; the fields say what
// parseHead must make of them.
var acceptedHeads = []struct {
	name                 string
	in                   string
	method, target, host string
	length               int64
	close                bool
	fields               int // len(Head.Fields), Host included
}{
	{name: "GET with Host", in: head("GET / HTTP/1.1", "Host: example.com"),
		method: "GET", target: "/", host: "example.com", fields: 1},
	{name: "POST with a body", in: head("POST /submit HTTP/1.1", "Host: a", "Content-Type: text/plain", "Content-Length: 5"),
		method: "POST", target: "/submit", host: "a", length: 5, fields: 3},
	{name: "Content-Length of MaxBody", in: head("PUT /x HTTP/1.1", "Host: a", "Content-Length: "+strconv.Itoa(MaxBody)),
		method: "PUT", target: "/x", host: "a", length: MaxBody, fields: 2},
	{name: "Content-Length 0", in: head("POST / HTTP/1.1", "Host: a", "Content-Length: 0"),
		method: "POST", target: "/", host: "a", fields: 2},
	// Leading zeros are digits: strconv.ParseUint, which net/http uses, reads 7 too.
	{name: "Content-Length with leading zeros", in: head("POST / HTTP/1.1", "Host: a", "Content-Length: 007"),
		method: "POST", target: "/", host: "a", length: 7, fields: 2},
	{name: "Connection keep-alive", in: head("GET / HTTP/1.1", "Host: a", "Connection: keep-alive"),
		method: "GET", target: "/", host: "a", fields: 2},
	{name: "Connection close", in: head("GET / HTTP/1.1", "Host: a", "Connection: close"),
		method: "GET", target: "/", host: "a", close: true, fields: 2},
	{name: "Connection list, any case", in: head("GET / HTTP/1.1", "Host: a", "Connection: Keep-Alive , ,\tCLOSE"),
		method: "GET", target: "/", host: "a", close: true, fields: 2},
	{name: "close in a second Connection line", in: head("GET / HTTP/1.1", "Host: a", "Connection: keep-alive", "connection: close"),
		method: "GET", target: "/", host: "a", close: true, fields: 3},
	{name: "empty Connection", in: head("GET / HTTP/1.1", "Host: a", "Connection:"),
		method: "GET", target: "/", host: "a", fields: 2},
	{name: "lowercase names, OWS around values", in: head("GET / HTTP/1.1", "host: \t a.example:8080 \t", "x-y:z \t"),
		method: "GET", target: "/", host: "a.example:8080", fields: 2},
	{name: "IPv6 Host", in: head("GET / HTTP/1.1", "Host: [::1]:80"),
		method: "GET", target: "/", host: "[::1]:80", fields: 1},
	// httpguts.ValidHostHeader("") holds and net/http's server takes it too.
	{name: "empty Host", in: head("GET / HTTP/1.1", "Host:"),
		method: "GET", target: "/", host: "", fields: 1},
	{name: "percent escapes in the path", in: head("GET /a%2Fb%20c%7e HTTP/1.1", "Host: a"),
		method: "GET", target: "/a%2Fb%20c%7e", host: "a", fields: 1},
	{name: "sub-delims, colon and at in the path", in: head("GET /a:b@c/!$&'()*+,;=~._- HTTP/1.1", "Host: a"),
		method: "GET", target: "/a:b@c/!$&'()*+,;=~._-", host: "a", fields: 1},
	{name: "odd visible bytes in the query", in: head("GET /s?q=a|b{c}[d]\"<>^`\\%zz??/ HTTP/1.1", "Host: a"),
		method: "GET", target: "/s?q=a|b{c}[d]\"<>^`\\%zz??/", host: "a", fields: 1},
	{name: "empty query", in: head("GET /x? HTTP/1.1", "Host: a"),
		method: "GET", target: "/x?", host: "a", fields: 1},
	{name: "obs-text and inner tab in a value", in: head("GET / HTTP/1.1", "Host: a", "X-Name: caf\xc3\xa9\tau lait"),
		method: "GET", target: "/", host: "a", fields: 2},
	{name: "extension method", in: head("M-SEARCH /x HTTP/1.1", "Host: a"),
		method: "M-SEARCH", target: "/x", host: "a", fields: 1},
	// net/http adds Cache-Control: no-cache to its Header for this; the
	// relay forwards the Pragma line as is (see checkAgreesWithNetHTTP).
	{name: "Pragma no-cache", in: head("GET / HTTP/1.1", "Host: a", "Pragma: no-cache"),
		method: "GET", target: "/", host: "a", fields: 2},
	{name: "64 header lines", in: withFields(maxFields),
		method: "GET", target: "/", host: "a", fields: maxFields},
}

// refusedHeads go to net/http, one row per rule of parseHead.
var refusedHeads = []struct{ name, in string }{
	// Request line.
	{"HTTP/1.0", head("GET / HTTP/1.0", "Host: a")},
	{"HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\n"},
	{"lowercase protocol", head("GET / http/1.1", "Host: a")},
	{"protocol with more after it", head("GET / HTTP/1.11", "Host: a")},
	{"no protocol", head("GET /", "Host: a")},
	{"empty method", head(" / HTTP/1.1", "Host: a")},
	{"method with a non-token byte", head("G(T / HTTP/1.1", "Host: a")},
	{"method with a non-ASCII byte", head("G\xc3\x89T / HTTP/1.1", "Host: a")},
	{"two spaces after the method", head("GET  / HTTP/1.1", "Host: a")},
	{"space inside the target", head("GET /a b HTTP/1.1", "Host: a")},
	{"absolute-form target", head("GET http://a/ HTTP/1.1", "Host: a")},
	{"authority-form target", head("CONNECT a:443 HTTP/1.1", "Host: a:443")},
	{"asterisk target", head("OPTIONS * HTTP/1.1", "Host: a")},
	{"target starting with //", head("GET //a/b HTTP/1.1", "Host: a")},
	{"fragment in the path", head("GET /a#b HTTP/1.1", "Host: a")},
	{"fragment in the query", head("GET /a?b#c HTTP/1.1", "Host: a")},
	{"raw quote in the path", head("GET /a\"b HTTP/1.1", "Host: a")},
	{"raw < in the path", head("GET /a<b HTTP/1.1", "Host: a")},
	{"backslash in the path", head("GET /a\\b HTTP/1.1", "Host: a")},
	{"non-ASCII in the path", head("GET /caf\xc3\xa9 HTTP/1.1", "Host: a")},
	{"non-ASCII in the query", head("GET /?q=\xc3\xa9 HTTP/1.1", "Host: a")},
	{"DEL in the query", head("GET /?q=\x7f HTTP/1.1", "Host: a")},
	{"NUL in the target", head("GET /a\x00 HTTP/1.1", "Host: a")},
	{"bad percent escape", head("GET /a%zz HTTP/1.1", "Host: a")},
	{"short percent escape", head("GET /a%4 HTTP/1.1", "Host: a")},
	{"percent escape cut by the query", head("GET /a%4?1 HTTP/1.1", "Host: a")},
	{"percent at the end", head("GET /a% HTTP/1.1", "Host: a")},

	// Host.
	{"missing Host", head("GET / HTTP/1.1", "X: y")},
	{"two Host lines", head("GET / HTTP/1.1", "Host: a", "Host: a")},
	{"two Host lines, different case", head("GET / HTTP/1.1", "Host: a", "host: b")},
	{"Host with a space", head("GET / HTTP/1.1", "Host: a b")},
	{"Host with userinfo", head("GET / HTTP/1.1", "Host: u@a")},
	{"Host with a slash", head("GET / HTTP/1.1", "Host: a/b")},

	// Content-Length.
	{"two equal Content-Length lines", head("POST / HTTP/1.1", "Host: a", "Content-Length: 5", "Content-Length: 5")},
	{"two Content-Length lines, different case", head("POST / HTTP/1.1", "Host: a", "Content-Length: 5", "content-length: 6")},
	{"Content-Length list", head("POST / HTTP/1.1", "Host: a", "Content-Length: 5, 5")},
	{"Content-Length with plus", head("POST / HTTP/1.1", "Host: a", "Content-Length: +5")},
	{"Content-Length with minus", head("POST / HTTP/1.1", "Host: a", "Content-Length: -5")},
	{"Content-Length with inner space", head("POST / HTTP/1.1", "Host: a", "Content-Length: 1 0")},
	{"Content-Length in hex", head("POST / HTTP/1.1", "Host: a", "Content-Length: 0x10")},
	{"Content-Length with underscore", head("POST / HTTP/1.1", "Host: a", "Content-Length: 1_0")},
	{"Content-Length of 19 digits", head("POST / HTTP/1.1", "Host: a", "Content-Length: 0000000000000000001")},
	{"Content-Length over MaxBody", head("POST / HTTP/1.1", "Host: a", "Content-Length: "+strconv.Itoa(MaxBody+1))},
	{"empty Content-Length", head("POST / HTTP/1.1", "Host: a", "Content-Length:")},

	// Headers that change framing or the connection.
	{"Transfer-Encoding", head("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: chunked")},
	{"Transfer-Encoding, lowercase", head("POST / HTTP/1.1", "Host: a", "transfer-encoding: chunked")},
	{"Transfer-Encoding with Content-Length", head("POST / HTTP/1.1", "Host: a", "Content-Length: 5", "Transfer-Encoding: chunked")},
	{"Upgrade", head("GET / HTTP/1.1", "Host: a", "Upgrade: websocket")},
	{"Expect", head("POST / HTTP/1.1", "Host: a", "Content-Length: 5", "Expect: 100-continue")},
	{"Trailer", head("POST / HTTP/1.1", "Host: a", "Trailer: X")},
	{"TE", head("GET / HTTP/1.1", "Host: a", "TE: trailers")},
	{"Keep-Alive", head("GET / HTTP/1.1", "Host: a", "Keep-Alive: timeout=5")},
	{"Proxy-Connection", head("GET / HTTP/1.1", "Host: a", "Proxy-Connection: keep-alive")},
	{"HTTP2-Settings", head("GET / HTTP/1.1", "Host: a", "HTTP2-Settings: AAMAAABkAAQAAP__")},
	{"Connection naming Upgrade", head("GET / HTTP/1.1", "Host: a", "Connection: Upgrade")},
	{"Connection naming another header", head("GET / HTTP/1.1", "Host: a", "Connection: close, X-Secret")},
	{"Connection naming TE after keep-alive", head("GET / HTTP/1.1", "Host: a", "Connection: keep-alive, te")},
	{"Connection token with a parameter", head("GET / HTTP/1.1", "Host: a", "Connection: close;x")},

	// Header line syntax.
	{"obs-fold with a space", head("GET / HTTP/1.1", "Host: a", "X: b", " c")},
	{"obs-fold with a tab", head("GET / HTTP/1.1", "Host: a", "X: b", "\tc")},
	{"first header line folded", head("GET / HTTP/1.1", " Host: a")},
	{"bare LF everywhere", "GET / HTTP/1.1\nHost: a\n\n"},
	{"bare LF ending one line", "GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n"},
	{"bare LF as the blank line", "GET / HTTP/1.1\r\nHost: a\r\n\n"},
	{"bare CR inside a value", head("GET / HTTP/1.1", "Host: a", "X: b\rc")},
	{"bare CR inside the request line", head("GET /\r HTTP/1.1", "Host: a")},
	{"CR before CRLF", "GET / HTTP/1.1\r\nHost: a\r\r\n\r\n"},
	{"space before the colon", head("GET / HTTP/1.1", "Host : a")},
	{"tab before the colon", head("GET / HTTP/1.1", "Host\t: a")},
	{"empty header name", head("GET / HTTP/1.1", "Host: a", ": b")},
	{"header line without a colon", head("GET / HTTP/1.1", "Host: a", "X b")},
	{"non-token byte in a name", head("GET / HTTP/1.1", "Host: a", "X(Y): b")},
	{"non-ASCII byte in a name", head("GET / HTTP/1.1", "Host: a", "X\xc3\xa9: b")},
	{"control byte in a value", head("GET / HTTP/1.1", "Host: a", "X: b\x01c")},
	{"escape byte in a value", head("GET / HTTP/1.1", "Host: a", "X: \x1b[2J")},
	{"DEL in a value", head("GET / HTTP/1.1", "Host: a", "X: b\x7f")},
	{"NUL in a value", head("GET / HTTP/1.1", "Host: a", "X: b\x00c")},
	{"NUL in a name", head("GET / HTTP/1.1", "Host: a", "X\x00: b")},
	{"65 header lines", withFields(maxFields + 1)},

	// Framing of the head itself.
	{"no blank line", "GET / HTTP/1.1\r\nHost: a\r\n"},
	{"empty line before the request line", "\r\n" + head("GET / HTTP/1.1", "Host: a")},
	{"trailing bytes after the blank line", head("GET / HTTP/1.1", "Host: a") + "x"},
	{"a second request after the blank line", head("GET / HTTP/1.1", "Host: a") + head("GET / HTTP/1.1", "Host: a")},
	{"empty input", ""},
}

func TestParseHeadAccepts(t *testing.T) {
	for _, tc := range acceptedHeads {
		t.Run(tc.name, func(t *testing.T) {
			var h Head
			if !parseHead([]byte(tc.in), &h) {
				t.Fatalf("parseHead(%q) = false, want true", tc.in)
			}
			if string(h.Method) != tc.method || string(h.Target) != tc.target || string(h.Host) != tc.host {
				t.Errorf("method, target, host = %q, %q, %q; want %q, %q, %q",
					h.Method, h.Target, h.Host, tc.method, tc.target, tc.host)
			}
			if h.ContentLength != tc.length || h.Close != tc.close {
				t.Errorf("ContentLength, Close = %d, %v; want %d, %v", h.ContentLength, h.Close, tc.length, tc.close)
			}
			if len(h.Fields) != tc.fields {
				t.Errorf("len(Fields) = %d, want %d", len(h.Fields), tc.fields)
			}
		})
	}
}

func TestParseHeadRefuses(t *testing.T) {
	for _, tc := range refusedHeads {
		t.Run(tc.name, func(t *testing.T) {
			var h Head
			if parseHead([]byte(tc.in), &h) {
				t.Fatalf("parseHead(%q) = true, want false: net/http must serve it", tc.in)
			}
		})
	}
}

// The relay forwards Fields as they came, so order, case and duplicates
// must survive parsing; only the OWS around values goes.
func TestParseHeadFieldsInOrder(t *testing.T) {
	in := head("GET / HTTP/1.1", "x-a: 1", "Host:  h ", "X-A:\t2\t", "Accept: */*")
	var h Head
	if !parseHead([]byte(in), &h) {
		t.Fatalf("parseHead(%q) = false", in)
	}
	want := []string{"x-a=1", "Host=h", "X-A=2", "Accept=*/*"}
	var got []string
	for _, f := range h.Fields {
		got = append(got, string(f.Name)+"="+string(f.Value))
	}
	if !slices.Equal(got, want) {
		t.Errorf("Fields = %q, want %q", got, want)
	}
	if v, ok := h.Get("X-A"); !ok || string(v) != "1" {
		t.Errorf(`Get("X-A") = %q, %v; want the first line's "1", true`, v, ok)
	}
	if _, ok := h.Get("X-B"); ok {
		t.Error(`Get("X-B") found a header that is not there`)
	}
}

// A connection's Head is reused for each request: nothing of a previous
// request may leak into the next one, accepted or not.
func TestParseHeadResetsHead(t *testing.T) {
	var h Head
	first := head("POST /a HTTP/1.1", "Host: a", "Content-Length: 5", "Connection: close")
	if !parseHead([]byte(first), &h) {
		t.Fatalf("parseHead(%q) = false", first)
	}
	if parseHead([]byte(head("GET / HTTP/1.0", "Host: b")), &h) {
		t.Fatal("parseHead accepted HTTP/1.0")
	}
	second := head("GET /b HTTP/1.1", "Host: b")
	if !parseHead([]byte(second), &h) {
		t.Fatalf("parseHead(%q) = false", second)
	}
	if h.ContentLength != 0 || h.Close || len(h.Fields) != 1 || string(h.Host) != "b" {
		t.Errorf("after %q: ContentLength %d, Close %v, %d fields, Host %q; want 0, false, 1, \"b\"",
			second, h.ContentLength, h.Close, len(h.Fields), h.Host)
	}
}

// TestParseHeadAgreesWithNetHTTP runs the fuzz property on the accepted
// table, so a plain `go test` checks it too.
func TestParseHeadAgreesWithNetHTTP(t *testing.T) {
	for _, tc := range acceptedHeads {
		t.Run(tc.name, func(t *testing.T) { checkAgreesWithNetHTTP(t, []byte(tc.in)) })
	}
}

// FuzzParseHeadAgreesWithNetHTTP checks the relay's security property:
// whatever parseHead takes, net/http reads as the same request. A request
// the two read differently could be framed or routed one way by the relay
// and another by net/http or the upstream (request smuggling, header
// confusion). Refusing is always safe: net/http then serves the request.
func FuzzParseHeadAgreesWithNetHTTP(f *testing.F) {
	for _, tc := range acceptedHeads {
		f.Add([]byte(tc.in))
	}
	for _, tc := range refusedHeads {
		f.Add([]byte(tc.in))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		checkAgreesWithNetHTTP(t, in)
	})
}

func checkAgreesWithNetHTTP(t *testing.T, in []byte) {
	t.Helper()
	var h Head
	if !parseHead(in, &h) {
		return
	}
	req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(in)))
	if err != nil {
		t.Fatalf("parseHead accepts %q, net/http refuses it: %v", in, err)
	}
	if req.Method != string(h.Method) || req.RequestURI != string(h.Target) || req.Proto != "HTTP/1.1" {
		t.Errorf("request line of %q: net/http %q %q %q, parseHead %q %q HTTP/1.1",
			in, req.Method, req.RequestURI, req.Proto, h.Method, h.Target)
	}
	// validTarget's promise: a reverse proxy forwards the target unchanged.
	if got := req.URL.RequestURI(); got != string(h.Target) {
		t.Errorf("target of %q: net/http would forward %q, the relay %q", in, got, h.Target)
	}
	if req.Host != string(h.Host) || !httpguts.ValidHostHeader(req.Host) {
		t.Errorf("Host of %q: net/http %q, parseHead %q", in, req.Host, h.Host)
	}
	if req.ContentLength != h.ContentLength {
		t.Errorf("Content-Length of %q: net/http %d, parseHead %d", in, req.ContentLength, h.ContentLength)
	}
	if req.Close != h.Close {
		t.Errorf("Close of %q: net/http %v, parseHead %v", in, req.Close, h.Close)
	}

	want := map[string][]string{}
	hosts := 0
	for _, f := range h.Fields {
		name, value := string(f.Name), string(f.Value)
		if !httpguts.ValidHeaderFieldName(name) || !httpguts.ValidHeaderFieldValue(value) {
			t.Errorf("parseHead accepts %q with the invalid field %q: %q", in, name, value)
		}
		if strings.Trim(value, " \t") != value {
			t.Errorf("parseHead kept OWS around the value %q in %q", value, in)
		}
		key := textproto.CanonicalMIMEHeaderKey(name)
		if key == "Host" {
			// http.ReadRequest moves Host to req.Host (checked above)
			// and deletes it from req.Header.
			hosts++
			continue
		}
		want[key] = append(want[key], value)
	}
	if hosts != 1 {
		t.Errorf("parseHead accepts %q with %d Host fields", in, hosts)
	}
	// For HTTP/1.0 caches, net/http's Header gets a Cache-Control: no-cache
	// made up from Pragma: no-cache (fixPragmaCacheControl). The relay
	// forwards the Pragma line itself, and net/http behind it makes up the
	// same, so the two still read the same request.
	if p := want["Pragma"]; len(p) > 0 && p[0] == "no-cache" && want["Cache-Control"] == nil {
		want["Cache-Control"] = []string{"no-cache"}
	}
	if !maps.EqualFunc(map[string][]string(req.Header), want, slices.Equal[[]string]) {
		t.Errorf("header of %q:\nnet/http  %q\nparseHead %q", in, req.Header, want)
	}
}
