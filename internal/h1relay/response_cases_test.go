package h1relay

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

func chunk(s string) string { return fmt.Sprintf("%x\r\n%s\r\n", len(s), s) }

type relayCase struct {
	name          string
	in            string
	isHead, close bool

	wantErr     error // nil: success; else errors.Is target
	wantStarted bool  // for error rows: whether bytes went to the client

	status     int
	interim    []int
	prefix     string            // the output starts with this
	header     map[string]string // present with this value
	absent     []string          // not present
	cl         string            // Content-Length the client sees ("" none)
	chunked    bool              // Transfer-Encoding: chunked to the client
	body       string
	trailer    map[string]string
	notrailer  []string
	reusable   bool
	check      func(t *testing.T, out string, v clientView)
	skipParsed bool // rows whose output is checked by check alone
}

const okCL = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"

// relayCases are the answer shapes TestRelayResponses runs: answers
// relayed as they are framed, then the refused ones, then connection
// handling, then answers cut short.
var relayCases = slices.Concat(framedAnswers, refusedAnswers, connectionAnswers, cutAnswers)

var framedAnswers = []relayCase{
	{
		name:     "content-length body",
		in:       "HTTP/1.1 200 Fine Thanks\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello",
		status:   200,
		prefix:   "HTTP/1.1 200 OK\r\n", // the reason is net/http's, not the upstream's
		header:   map[string]string{"Content-Type": "text/plain"},
		cl:       "5",
		body:     "hello",
		reusable: true,
	},
	{
		name:     "content-length zero",
		in:       "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
		status:   200,
		cl:       "0",
		reusable: true,
	},
	{
		name: "chunked with extensions and trailers",
		in: "HTTP/1.1 200 OK\r\nTrailer: X-Sum\r\nTransfer-Encoding: chunked\r\n\r\n" +
			"5;name=value\r\nhello\r\n6 ; a=\"b\"\r\n world\r\n0;last\r\n" +
			"X-Sum: 42\r\nX-Flint-Forged: 1\r\nConnection: close\r\n\r\n",
		status:    200,
		chunked:   true,
		body:      "hello world",
		trailer:   map[string]string{"X-Sum": "42"},
		notrailer: []string{"X-Flint-Forged", "Connection"},
		reusable:  true,
		check: func(t *testing.T, out string, _ clientView) {
			// Extensions are dropped, sizes re-written by the relay.
			if strings.Contains(out, ";") {
				t.Errorf("chunk extension passed on: %q", out)
			}
		},
	},
	{
		name:     "close-delimited body is re-chunked",
		in:       "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end",
		status:   200,
		chunked:  true,
		body:     "until the end",
		reusable: false,
	},
	{
		name:     "close-delimited empty body",
		in:       "HTTP/1.1 200 OK\r\n\r\n",
		status:   200,
		chunked:  true,
		reusable: false,
	},
	{
		name:     "HEAD keeps Content-Length, no body",
		in:       "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n",
		isHead:   true,
		status:   200,
		cl:       "1234",
		reusable: true,
	},
	{
		name:     "HEAD with chunked framing has none",
		in:       "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
		isHead:   true,
		status:   200,
		absent:   []string{"Transfer-Encoding"},
		reusable: true,
	},
	{
		name:     "204 drops Content-Length",
		in:       "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n",
		status:   204,
		absent:   []string{"Content-Length", "Transfer-Encoding"},
		reusable: true,
	},
	{
		name:     "304 has no body",
		in:       "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\nContent-Length: 5\r\n\r\n",
		status:   304,
		header:   map[string]string{"Etag": "\"x\""},
		absent:   []string{"Transfer-Encoding"},
		cl:       "5", // the length of the representation, not of a body
		reusable: true,
	},
	{
		name: "103 Early Hints then 200, in order",
		in: "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\nX-Flint-Hint: 1\r\n\r\n" +
			okCL,
		status:   200,
		interim:  []int{103},
		prefix:   "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\n",
		cl:       "5",
		body:     "hello",
		reusable: true,
	},
	{
		name:     "100 Continue interim",
		in:       "HTTP/1.1 100 Continue\r\n\r\n" + okCL,
		status:   200,
		interim:  []int{100},
		cl:       "5",
		body:     "hello",
		reusable: true,
	},
	{
		name:     "five interims pass",
		in:       strings.Repeat("HTTP/1.1 103 Early Hints\r\n\r\n", 5) + okCL,
		status:   200,
		interim:  []int{103, 103, 103, 103, 103},
		cl:       "5",
		body:     "hello",
		reusable: true,
	},
}

var connectionAnswers = []relayCase{
	{
		// Lines longer than the upstream reader's buffer are read in
		// pieces; the value must come out whole.
		name:     "header line longer than the read buffer",
		in:       "HTTP/1.1 200 OK\r\nX-Long: " + strings.Repeat("v", 10000) + "\r\nContent-Length: 5\r\n\r\nhello",
		status:   200,
		header:   map[string]string{"X-Long": strings.Repeat("v", 10000)},
		cl:       "5",
		body:     "hello",
		reusable: true,
	},
	{
		name:     "status line without reason",
		in:       "HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nok",
		status:   200,
		prefix:   "HTTP/1.1 200 OK\r\n",
		cl:       "2",
		body:     "ok",
		reusable: true,
	},
	{
		name:     "HTTP/1.0 answer not reusable",
		in:       "HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhello",
		status:   200,
		prefix:   "HTTP/1.1 200 OK\r\n",
		absent:   []string{"Connection"}, // the upstream's connection is not the client's
		cl:       "5",
		body:     "hello",
		reusable: false,
	},
	{
		name:     "HTTP/1.0 keep-alive answer still not reusable",
		in:       "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 5\r\n\r\nhello",
		status:   200,
		absent:   []string{"Connection"},
		cl:       "5",
		body:     "hello",
		reusable: false,
	},
	{
		name:     "Connection: close not reusable",
		in:       "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 5\r\n\r\nhello",
		status:   200,
		absent:   []string{"Connection"},
		cl:       "5",
		body:     "hello",
		reusable: false,
	},
	{
		name:     "Connection list with close not reusable",
		in:       "HTTP/1.1 200 OK\r\nConnection: keep-alive, CLOSE\r\nContent-Length: 5\r\n\r\nhello",
		status:   200,
		cl:       "5",
		body:     "hello",
		reusable: false,
	},
	{
		name:     "close flag tells the client",
		in:       okCL,
		close:    true,
		status:   200,
		prefix:   "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n", // then Date, then Connection: close
		cl:       "5",
		body:     "hello",
		reusable: true, // the upstream's connection is fine; the client's closes
	},
	{
		name:     "Connection names a header, which is dropped",
		in:       "HTTP/1.1 200 OK\r\nConnection: X-Secret, x-other\r\nX-Secret: s\r\nX-Other: o\r\nX-Public: p\r\nContent-Length: 5\r\n\r\nhello",
		status:   200,
		header:   map[string]string{"X-Public": "p"},
		absent:   []string{"X-Secret", "X-Other", "Connection"},
		cl:       "5",
		body:     "hello",
		reusable: true,
	},
	{
		name: "every hop-by-hop header dropped",
		in: "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nProxy-Connection: keep-alive\r\nKeep-Alive: timeout=5\r\n" +
			"Proxy-Authenticate: Basic\r\nProxy-Authorization: Basic eA==\r\nTE: trailers\r\nUpgrade: h2c\r\n" +
			"Content-Length: 5\r\n\r\nhello",
		status:   200,
		absent:   []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "Te", "Upgrade", "Transfer-Encoding"},
		cl:       "5",
		body:     "hello",
		reusable: true,
	},
	{
		name:     "X-Flint-* dropped",
		in:       "HTTP/1.1 403 Forbidden\r\nX-Flint-Rejected: policy\r\nx-flint-trace: 1\r\nX-Flintstone: yabba\r\nContent-Length: 0\r\n\r\n",
		status:   403,
		header:   map[string]string{"X-Flintstone": "yabba"}, // only the X-Flint- prefix is the sidecar's
		absent:   []string{"X-Flint-Rejected", "X-Flint-Trace"},
		cl:       "0",
		reusable: true,
	},
	{
		name:     "Date added when missing",
		in:       okCL,
		status:   200,
		cl:       "5",
		body:     "hello",
		reusable: true,
		check: func(t *testing.T, _ string, v clientView) {
			d, err := http.ParseTime(v.final.Header.Get("Date"))
			if err != nil || time.Since(d).Abs() > time.Minute {
				t.Errorf("Date %q: %v", v.final.Header.Get("Date"), err)
			}
		},
	},
	{
		name:     "Date kept when present",
		in:       "HTTP/1.1 200 OK\r\nDate: Mon, 02 Jan 2006 15:04:05 GMT\r\nContent-Length: 5\r\n\r\nhello",
		status:   200,
		header:   map[string]string{"Date": "Mon, 02 Jan 2006 15:04:05 GMT"},
		cl:       "5",
		body:     "hello",
		reusable: true,
		check: func(t *testing.T, out string, _ clientView) {
			if n := strings.Count(out, "Date:"); n != 1 {
				t.Errorf("%d Date lines, want 1", n)
			}
		},
	},
	{
		name:     "unknown status",
		in:       "HTTP/1.1 599 Whatever\r\nContent-Length: 0\r\n\r\n",
		status:   599,
		prefix:   "HTTP/1.1 599 status code 599\r\n",
		cl:       "0",
		reusable: true,
	},
}
