package h1relay

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// dropFlint refuses every X-Flint-* header, as the sidecar's DropResponse
// does: those headers are the sidecar's own and an agent must not forge them.
func dropFlint(name []byte) bool {
	const prefix = "X-Flint-"
	return len(name) >= len(prefix) && equalFold(name[:len(prefix)], prefix)
}

// relayBytes runs relay over the upstream bytes in and returns what reached
// the client once the caller's final flush is done.
func relayBytes(in []byte, isHead, close bool) (Response, []byte, error) {
	var out bytes.Buffer
	w := bufio.NewWriter(&out)
	rl := relayer{drop: dropFlint}
	res, err := relayWith(&rl, bufio.NewReader(bytes.NewReader(in)), w, isHead, close)
	_ = w.Flush()
	return res, out.Bytes(), err
}

// relayWith calls relay, the one place that knows its signature; close is
// what the closing hook answers.
func relayWith(rl *relayer, up *bufio.Reader, w *bufio.Writer, isHead, close bool) (Response, error) {
	return rl.relay(up, w, isHead, func() bool { return close })
}

// clientView is the client's parse of the relayed bytes.
type clientView struct {
	interim []*http.Response
	final   *http.Response
	body    []byte
	rest    []byte // bytes after the final answer: must be none
}

// readClientView parses out the way an HTTP/1.1 client does: interim
// answers, then one final answer and its body read to the end.
func readClientView(out []byte, isHead bool) (clientView, error) {
	var v clientView
	br := bufio.NewReader(bytes.NewReader(out))
	req := &http.Request{Method: http.MethodGet}
	if isHead {
		req.Method = http.MethodHead
	}
	for {
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			return v, fmt.Errorf("ReadResponse: %w", err)
		}
		if resp.StatusCode >= 200 || resp.StatusCode == http.StatusSwitchingProtocols {
			v.final = resp
			break
		}
		if len(v.interim) == max1xx {
			return v, fmt.Errorf("more than %d interim answers written", max1xx)
		}
		v.interim = append(v.interim, resp)
	}
	body, err := io.ReadAll(v.final.Body)
	v.body = body
	if err != nil {
		return v, fmt.Errorf("reading body: %w", err)
	}
	v.rest, _ = io.ReadAll(br)
	return v, nil
}

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

var relayCases = []relayCase{
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
	{
		name:        "six interims refused",
		in:          strings.Repeat("HTTP/1.1 103 Early Hints\r\n\r\n", 6) + okCL,
		wantErr:     ErrBadResponse,
		wantStarted: true, // the first five went out
	},
	{
		name:    "unrequested 101 refused",
		in:      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
		wantErr: ErrBadResponse,
	},
	{
		name:    "Content-Length with Transfer-Encoding refused",
		in:      "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
		wantErr: ErrBadResponse,
	},
	{
		name:    "Transfer-Encoding before Content-Length refused",
		in:      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
		wantErr: ErrBadResponse,
	},
	{
		name:    "two Transfer-Encoding lines refused",
		in:      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		wantErr: ErrBadResponse,
	},
	{
		name:    "differing Content-Lengths refused",
		in:      "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
		wantErr: ErrBadResponse,
	},
	{
		name:    "Content-Length list refused",
		in:      "HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\nhello",
		wantErr: ErrBadResponse,
	},
	{
		name:    "signed Content-Length refused",
		in:      "HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\nhello",
		wantErr: ErrBadResponse,
	},
	{
		name:     "equal Content-Lengths accepted, one written",
		in:       "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
		status:   200,
		cl:       "5",
		body:     "hello",
		reusable: true,
		check: func(t *testing.T, out string, _ clientView) {
			if n := strings.Count(out, "Content-Length:"); n != 1 {
				t.Errorf("%d Content-Length lines written, want 1: %q", n, out)
			}
		},
	},
	{
		name:    "gzip, chunked refused",
		in:      "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
		wantErr: ErrBadResponse,
	},
	{
		name:    "identity refused",
		in:      "HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\n\r\nhello",
		wantErr: ErrBadResponse,
	},
	{
		name:    "header line without colon refused",
		in:      "HTTP/1.1 200 OK\r\nX-No-Colon\r\nContent-Length: 0\r\n\r\n",
		wantErr: ErrBadResponse,
	},
	{
		name:    "space before colon refused",
		in:      "HTTP/1.1 200 OK\r\nContent-Length : 5\r\n\r\nhello",
		wantErr: ErrBadResponse,
	},
	{
		name:    "empty header name refused",
		in:      "HTTP/1.1 200 OK\r\n: x\r\nContent-Length: 0\r\n\r\n",
		wantErr: ErrBadResponse,
	},
	{
		name:    "control byte in value refused",
		in:      "HTTP/1.1 200 OK\r\nX-A: a\x00b\r\nContent-Length: 0\r\n\r\n",
		wantErr: ErrBadResponse,
	},
	{
		name:    "DEL in value refused",
		in:      "HTTP/1.1 200 OK\r\nX-A: a\x7fb\r\nContent-Length: 0\r\n\r\n",
		wantErr: ErrBadResponse,
	},
	{
		name:    "bare LF in header refused",
		in:      "HTTP/1.1 200 OK\r\nX-A: a\nContent-Length: 0\r\n\r\n",
		wantErr: ErrBadResponse,
	},
	{
		name:    "bare LF after status line refused",
		in:      "HTTP/1.1 200 OK\nContent-Length: 0\n\n",
		wantErr: ErrBadResponse,
	},
	{
		name:    "bare CR in value refused",
		in:      "HTTP/1.1 200 OK\r\nX-A: a\rInjected: 1\r\nContent-Length: 0\r\n\r\n",
		wantErr: ErrBadResponse,
	},
	{
		name:    "obs-fold refused",
		in:      "HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 0\r\n\r\n",
		wantErr: ErrBadResponse,
	},
	{
		name:    "HTTP/2 status line refused",
		in:      "HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n",
		wantErr: ErrBadResponse,
	},
	{
		name:    "two-digit status refused",
		in:      "HTTP/1.1 20 OK\r\nContent-Length: 0\r\n\r\n",
		wantErr: ErrBadResponse,
	},
	{
		name:    "status below 100 refused",
		in:      "HTTP/1.1 099 Odd\r\nContent-Length: 0\r\n\r\n",
		wantErr: ErrBadResponse,
	},
	{
		name:    "status without space refused",
		in:      "HTTP/1.1 2000\r\nContent-Length: 0\r\n\r\n",
		wantErr: ErrBadResponse,
	},
	{
		name:    "header section over 1 MiB refused",
		in:      "HTTP/1.1 200 OK\r\n" + strings.Repeat("X-Big: "+strings.Repeat("a", 1000)+"\r\n", 1100) + "Content-Length: 0\r\n\r\n",
		wantErr: ErrBadResponse,
	},
	{
		name:    "too many header lines refused",
		in:      "HTTP/1.1 200 OK\r\n" + strings.Repeat("X-A: 1\r\n", maxFields*4+1) + "Content-Length: 0\r\n\r\n",
		wantErr: ErrBadResponse,
	},
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
	{
		name:        "truncated Content-Length body",
		in:          "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello",
		wantErr:     io.ErrUnexpectedEOF,
		wantStarted: true,
	},
	{
		name:        "truncated chunk data",
		in:          "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
		wantErr:     io.ErrUnexpectedEOF,
		wantStarted: true,
	},
	{
		name:        "chunked body without last chunk",
		in:          "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
		wantErr:     io.ErrUnexpectedEOF,
		wantStarted: true,
	},
	{
		name:        "chunked body without trailer end",
		in:          "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n",
		wantErr:     io.ErrUnexpectedEOF,
		wantStarted: true,
	},
	{
		name:        "chunk not followed by CRLF",
		in:          "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloX\r\n0\r\n\r\n",
		wantErr:     ErrBadResponse,
		wantStarted: true,
	},
	{
		name:        "chunk size over 15 hex digits",
		in:          "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + strings.Repeat("0", 15) + "5\r\nhello\r\n0\r\n\r\n",
		wantErr:     ErrBadResponse,
		wantStarted: true,
	},
	{
		name:     "chunk size of 15 hex digits",
		in:       "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + strings.Repeat("0", 14) + "5\r\nhello\r\n0\r\n\r\n",
		status:   200,
		chunked:  true,
		body:     "hello",
		reusable: true,
	},
	{
		name:     "chunk size in upper-case hex",
		in:       "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nA\r\n0123456789\r\n0\r\n\r\n",
		status:   200,
		chunked:  true,
		body:     "0123456789",
		reusable: true,
	},
	{
		name:        "chunk size then garbage",
		in:          "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5 x\r\nhello\r\n0\r\n\r\n",
		wantErr:     ErrBadResponse,
		wantStarted: true,
	},
	{
		name:        "chunk size not hex",
		in:          "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nx5\r\nhello\r\n0\r\n\r\n",
		wantErr:     ErrBadResponse,
		wantStarted: true,
	},
	{
		name:        "bad trailer line",
		in:          "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nnot a trailer\r\n\r\n",
		wantErr:     ErrBadResponse,
		wantStarted: true,
	},
	{
		// The caller retries a replayable request on another connection
		// (ErrNoAnswer): the upstream closed an idle connection. io.EOF
		// must stay visible, unlike the io.ErrUnexpectedEOF of the rows
		// below, which must not be retried.
		name:    "EOF before any byte",
		in:      "",
		wantErr: io.EOF,
	},
	{
		name:    "EOF inside the status line",
		in:      "HTTP/1.1 2",
		wantErr: io.ErrUnexpectedEOF,
	},
	{
		name:    "EOF inside the header section",
		in:      "HTTP/1.1 200 OK\r\nContent-Len",
		wantErr: io.ErrUnexpectedEOF,
	},
	{
		// A length the upstream does not announce as a header is the
		// relay's to frame: a header named in Connection is dropped, but
		// the client must still learn where the body ends.
		name:     "Connection naming Content-Length keeps the body framed",
		in:       "HTTP/1.1 200 OK\r\nConnection: Content-Length\r\nContent-Length: 5\r\n\r\nhello",
		status:   200,
		body:     "hello",
		cl:       "5",
		reusable: true,
		check: func(t *testing.T, _ string, v clientView) {
			if v.final.ContentLength < 0 && len(v.final.TransferEncoding) == 0 {
				t.Errorf("answer has no framing: a keep-alive client reads its body until the connection closes")
			}
		},
	},
}

func TestRelayResponses(t *testing.T) {
	for _, tc := range relayCases {
		t.Run(tc.name, func(t *testing.T) {
			res, out, err := relayBytes([]byte(tc.in), tc.isHead, tc.close)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				if res.Started != tc.wantStarted {
					t.Errorf("Started = %v, want %v", res.Started, tc.wantStarted)
				}
				if !res.Started && len(out) > 0 {
					t.Errorf("not started, yet wrote %q", out)
				}
				if res.Reusable {
					t.Errorf("Reusable after an error")
				}
				return
			}
			if err != nil {
				t.Fatalf("relay: %v", err)
			}
			if !res.Started {
				t.Errorf("Started = false after a relayed answer")
			}
			if res.Status != tc.status {
				t.Errorf("Status = %d, want %d", res.Status, tc.status)
			}
			if res.Reusable != tc.reusable {
				t.Errorf("Reusable = %v, want %v", res.Reusable, tc.reusable)
			}
			if !strings.HasPrefix(string(out), tc.prefix) {
				t.Errorf("output starts %q, want %q", truncate(out), tc.prefix)
			}
			v, err := readClientView(out, tc.isHead)
			if err != nil {
				t.Fatalf("client cannot read %q: %v", out, err)
			}
			checkView(t, tc, v)
			if tc.check != nil {
				tc.check(t, string(out), v)
			}
		})
	}
}

func checkView(t *testing.T, tc relayCase, v clientView) {
	t.Helper()
	var codes []int
	for _, r := range v.interim {
		codes = append(codes, r.StatusCode)
	}
	if fmt.Sprint(codes) != fmt.Sprint(tc.interim) {
		t.Errorf("interim answers %v, want %v", codes, tc.interim)
	}
	r := v.final
	if r.StatusCode != tc.status {
		t.Errorf("client sees %d, want %d", r.StatusCode, tc.status)
	}
	if r.ProtoMajor != 1 || r.ProtoMinor != 1 {
		t.Errorf("client sees %s, want HTTP/1.1", r.Proto)
	}
	for k, want := range tc.header {
		if got := r.Header.Values(k); len(got) != 1 || got[0] != want {
			t.Errorf("header %s = %q, want [%q]", k, got, want)
		}
	}
	for _, k := range tc.absent {
		if vs, ok := r.Header[http.CanonicalHeaderKey(k)]; ok {
			t.Errorf("header %s passed on: %q", k, vs)
		}
	}
	if k := "Transfer-Encoding"; tc.chunked != (len(r.TransferEncoding) == 1 && r.TransferEncoding[0] == "chunked") {
		t.Errorf("%s %q, want chunked %v", k, r.TransferEncoding, tc.chunked)
	}
	if got := r.Header.Get("Content-Length"); got != tc.cl {
		t.Errorf("Content-Length %q, want %q", got, tc.cl)
	}
	if r.Close != tc.close {
		t.Errorf("client told close=%v, want %v", r.Close, tc.close)
	}
	if string(v.body) != tc.body {
		t.Errorf("body %q, want %q", v.body, tc.body)
	}
	for k, want := range tc.trailer {
		if got := r.Trailer.Get(k); got != want {
			t.Errorf("trailer %s = %q, want %q", k, got, want)
		}
	}
	for _, k := range tc.notrailer {
		if vs, ok := r.Trailer[http.CanonicalHeaderKey(k)]; ok {
			t.Errorf("trailer %s passed on: %q", k, vs)
		}
	}
	if len(v.rest) > 0 {
		t.Errorf("bytes after the answer: %q", v.rest)
	}
}

// TestRelayInterimFlushedBeforeFinal: an Early Hints answer is worth
// something only if the client has it while the final answer is produced.
func TestRelayInterimFlushedBeforeFinal(t *testing.T) {
	upR, upW := io.Pipe()
	cliR, cliW := io.Pipe()
	done := make(chan error, 1)
	go func() {
		rl := relayer{drop: dropFlint}
		w := bufio.NewWriter(cliW)
		_, err := relayWith(&rl, bufio.NewReader(upR), w, false, false)
		if ferr := w.Flush(); err == nil {
			err = ferr
		}
		done <- err
	}()
	defer func() {
		upW.Close()
		cliR.Close()
	}()
	go func() { _, _ = upW.Write([]byte("HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n")) }()
	br := bufio.NewReader(cliR)
	resp := readWithin(t, func() (*http.Response, error) { return http.ReadResponse(br, nil) })
	if resp.StatusCode != 103 {
		t.Fatalf("first answer %d, want 103", resp.StatusCode)
	}
	go func() { _, _ = upW.Write([]byte(okCL)) }()
	resp = readWithin(t, func() (*http.Response, error) { return http.ReadResponse(br, nil) })
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(body) != "hello" {
		t.Errorf("final %d %q", resp.StatusCode, body)
	}
	if err := <-done; err != nil {
		t.Errorf("relay: %v", err)
	}
}

func readWithin[T any](t *testing.T, f func() (T, error)) T {
	t.Helper()
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	go func() {
		v, err := f()
		ch <- result{v, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatal(r.err)
		}
		return r.v
	case <-time.After(5 * time.Second):
		t.Fatal("nothing reached the client: bytes held in the relay's writer")
	}
	panic("unreachable")
}

// streamFixture runs relay between an upstream pipe the test writes and a
// client pipe the test reads: a byte reaches the client only once relay
// flushed it.
type streamFixture struct {
	upW  *io.PipeWriter
	body io.Reader
	done chan error
}

func newStreamFixture(t *testing.T, head string) *streamFixture {
	t.Helper()
	upR, upW := io.Pipe()
	cliR, cliW := io.Pipe()
	f := &streamFixture{upW: upW, done: make(chan error, 1)}
	go func() {
		rl := relayer{drop: dropFlint}
		w := bufio.NewWriter(cliW)
		_, err := relayWith(&rl, bufio.NewReader(upR), w, false, false)
		if ferr := w.Flush(); err == nil {
			err = ferr
		}
		cliW.CloseWithError(err)
		f.done <- err
	}()
	// Unblock both goroutines whatever the test's outcome.
	t.Cleanup(func() {
		upW.CloseWithError(errors.New("test over"))
		cliR.Close()
	})
	go func() { _, _ = upW.Write([]byte(head)) }()
	resp := readWithin(t, func() (*http.Response, error) { return http.ReadResponse(bufio.NewReader(cliR), nil) })
	f.body = resp.Body
	return f
}

// send writes to the upstream pipe without waiting for relay to read it.
func (f *streamFixture) send(s string) {
	go func() { _, _ = f.upW.Write([]byte(s)) }()
}

func (f *streamFixture) expect(t *testing.T, want string) {
	t.Helper()
	got := readWithin(t, func() ([]byte, error) {
		b := make([]byte, len(want))
		_, err := io.ReadFull(f.body, b)
		return b, err
	})
	if string(got) != want {
		t.Fatalf("client got %q, want %q", got, want)
	}
}

const sseHead = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"

// TestRelayStreamFlushesEachChunk: each event reaches the client before
// the upstream produces the next (send waits for nothing, and the next
// event is produced only once the client has the previous one).
func TestRelayStreamFlushesEachChunk(t *testing.T) {
	f := newStreamFixture(t, sseHead)
	events := []string{"data: one\n\n", "data: two\n\n", "data: three\n\n"}
	for _, e := range events {
		f.send(chunk(e))
		f.expect(t, e)
	}
	f.send("0\r\n\r\n")
	if rest, err := io.ReadAll(f.body); err != nil || len(rest) > 0 {
		t.Errorf("after the last chunk: %q, %v", rest, err)
	}
	if err := <-f.done; err != nil {
		t.Errorf("relay: %v", err)
	}
}

// TestRelayStreamFlushesCloseDelimited: a body delimited by the upstream
// closing streams too, re-chunked as it comes.
func TestRelayStreamFlushesCloseDelimited(t *testing.T) {
	f := newStreamFixture(t, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n")
	for _, e := range []string{"data: one\n\n", "data: two\n\n"} {
		f.send(e)
		f.expect(t, e)
	}
	f.upW.Close()
	if rest, err := io.ReadAll(f.body); err != nil || len(rest) > 0 {
		t.Errorf("after the upstream closed: %q, %v", rest, err)
	}
	if err := <-f.done; err != nil {
		t.Errorf("relay: %v", err)
	}
}

// TestRelayStreamFlushesContentLength: a long Content-Length body goes out
// as it arrives, not when complete.
func TestRelayStreamFlushesContentLength(t *testing.T) {
	f := newStreamFixture(t, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n")
	f.send("hello")
	f.expect(t, "hello")
	f.send("world")
	f.expect(t, "world")
	if err := <-f.done; err != nil {
		t.Errorf("relay: %v", err)
	}
}

// TestRelayStreamFlushesBeforePartialChunkLine: an upstream's write need
// not end at a chunk boundary. When the end of one event arrives together
// with the first bytes of the next chunk-size line, relay waits on the
// upstream for the rest of that line; the event it has must be with the
// client by then, or the client sees it only when the next one is
// produced, which for an event stream can be much later.
func TestRelayStreamFlushesBeforePartialChunkLine(t *testing.T) {
	f := newStreamFixture(t, sseHead)
	f.send(chunk("data: one\n\n") + "b") // "b\r\n" starts the next chunk
	f.expect(t, "data: one\n\n")
	f.send("\r\ndata: two\n\r\n0\r\n\r\n")
	f.expect(t, "data: two\n")
}

// TestRelayStreamFlushesBeforeChunkCRLF: likewise when a chunk's data
// arrives without its closing CRLF.
func TestRelayStreamFlushesBeforeChunkCRLF(t *testing.T) {
	f := newStreamFixture(t, sseHead)
	f.send("b\r\ndata: one\n\n")
	f.expect(t, "data: one\n\n")
	f.send("\r\n0\r\n\r\n")
}

// TestRelayTrailerDeclaringFraming: a Trailer header announcing a framing
// field (RFC 9110 §6.5.1 forbids them in trailers) makes net/http's
// client refuse the whole answer ("bad trailer key"), so net/http's proxy
// answers 502. The relay must not pass on an answer its client cannot
// read: it must refuse it (or drop the declaration).
func TestRelayTrailerDeclaringFraming(t *testing.T) {
	for _, key := range []string{"Content-Length", "Transfer-Encoding", "Trailer"} {
		in := "HTTP/1.1 200 OK\r\nTrailer: " + key + "\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
		_, out, err := relayBytes([]byte(in), false, false)
		if errors.Is(err, ErrBadResponse) {
			continue
		}
		if err != nil {
			t.Errorf("Trailer: %s: %v", key, err)
			continue
		}
		if _, err := readClientView(out, false); err != nil {
			t.Errorf("Trailer: %s relayed as %q, which the client cannot read: %v", key, out, err)
		}
	}
}

// relayPipe runs relay on the client end of a net.Pipe whose other end
// writes upstream, with a read deadline on the upstream as Exchange.Relay
// sets one (the request timeout, the drain, a client that left).
func relayPipe(t *testing.T, upstream string, deadline time.Duration) (Response, []byte, error) {
	t.Helper()
	upC, upS := net.Pipe()
	t.Cleanup(func() { upC.Close(); upS.Close() })
	go func() { _, _ = upS.Write([]byte(upstream)) }()
	_ = upC.SetReadDeadline(time.Now().Add(deadline))
	var out bytes.Buffer
	w := bufio.NewWriter(&out)
	rl := relayer{drop: dropFlint}
	res, err := relayWith(&rl, bufio.NewReader(upC), w, false, false)
	_ = w.Flush()
	return res, out.Bytes(), err
}

// TestRelayDeadlineBetweenChunksEndsStream: a deadline between chunks ends
// the answer properly (an event-stream client then reconnects) but the
// upstream connection, mid-answer, is not reused.
func TestRelayDeadlineBetweenChunksEndsStream(t *testing.T) {
	res, out, err := relayPipe(t, sseHead+chunk("data: one\n\n"), 100*time.Millisecond)
	if err != errStreamCut {
		t.Fatalf("err = %v, want errStreamCut", err)
	}
	if !res.Started || res.Reusable {
		t.Errorf("Started %v Reusable %v, want true false", res.Started, res.Reusable)
	}
	v, err := readClientView(out, false)
	if err != nil {
		t.Fatalf("client cannot read %q: %v", out, err)
	}
	if string(v.body) != "data: one\n\n" || len(v.rest) > 0 {
		t.Errorf("body %q, then %q", v.body, v.rest)
	}
}

// TestRelayDeadlineClosedDelimitedEndsStream: likewise for a body the
// upstream would end by closing.
func TestRelayDeadlineCloseDelimitedEndsStream(t *testing.T) {
	res, out, err := relayPipe(t, "HTTP/1.1 200 OK\r\n\r\ndata: one\n\n", 100*time.Millisecond)
	if err != errStreamCut || res.Reusable {
		t.Fatalf("err = %v Reusable %v, want errStreamCut false", err, res.Reusable)
	}
	v, err := readClientView(out, false)
	if err != nil || string(v.body) != "data: one\n\n" {
		t.Fatalf("client reads %q: %q, %v", out, v.body, err)
	}
}

// TestRelayDeadlineInsideChunkIsAnError: inside a chunk the answer cannot
// end cleanly; the client must not be given a complete-looking answer.
func TestRelayDeadlineInsideChunkIsAnError(t *testing.T) {
	res, out, err := relayPipe(t, sseHead+"b\r\ndata: ", 100*time.Millisecond)
	if err == nil || err == errStreamCut || !res.Started {
		t.Fatalf("err = %v Started %v, want a deadline error after starting", err, res.Started)
	}
	if _, err := readClientView(out, false); err == nil {
		t.Errorf("client reads a complete answer from %q", out)
	}
}

// TestRelayDeadlineInHeadWritesNothing: before the final head nothing is
// written, so the caller can still answer (504).
func TestRelayDeadlineInHeadWritesNothing(t *testing.T) {
	res, out, err := relayPipe(t, "HTTP/1.1 200 OK\r\nContent-Le", 100*time.Millisecond)
	if !errors.Is(err, os.ErrDeadlineExceeded) || res.Started || len(out) > 0 {
		t.Fatalf("err = %v Started %v wrote %q", err, res.Started, out)
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("client left") }

// TestRelayClientErrorIsMarked: a client that left is not the upstream's
// fault; the caller tells them apart with IsClientError.
func TestRelayClientErrorIsMarked(t *testing.T) {
	for _, in := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n" + strings.Repeat("x", 5000),
		"HTTP/1.1 103 Early Hints\r\n\r\n" + okCL,
	} {
		rl := relayer{}
		_, err := relayWith(&rl, bufio.NewReader(strings.NewReader(in)), bufio.NewWriterSize(failWriter{}, 16), false, false)
		if !IsClientError(err) {
			t.Errorf("%.30q: err = %v, want a client error", in, err)
		}
	}
	if IsClientError(ErrBadResponse) {
		t.Errorf("ErrBadResponse taken for a client error")
	}
}

// TestRelayRefusedWritesNothing: an answer the refused hook takes back
// never reaches the client, and its short body is read so the upstream
// connection stays usable.
func TestRelayRefusedWritesNothing(t *testing.T) {
	for _, tc := range []struct {
		in       string
		reusable bool
	}{
		{"HTTP/1.1 503 Busy\r\nContent-Length: 4\r\n\r\nbusy", true},
		{"HTTP/1.1 503 Busy\r\nContent-Length: 40\r\n\r\nbusy", false},              // short body
		{"HTTP/1.1 503 Busy\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", false}, // not read
	} {
		var out bytes.Buffer
		w := bufio.NewWriter(&out)
		up := bufio.NewReader(strings.NewReader(tc.in))
		rl := relayer{refused: func(status int, _ []Field) bool { return status == 503 }}
		res, err := relayWith(&rl, up, w, false, false)
		_ = w.Flush()
		if !errors.Is(err, ErrRefused) || res.Started || out.Len() > 0 {
			t.Errorf("%q: err %v Started %v wrote %q", tc.in, err, res.Started, out.Bytes())
		}
		if res.Reusable != tc.reusable {
			t.Errorf("%q: Reusable %v, want %v", tc.in, res.Reusable, tc.reusable)
		}
		if res.Reusable && up.Buffered() > 0 {
			t.Errorf("%q: reusable with %d bytes unread", tc.in, up.Buffered())
		}
	}
}

// FuzzRelayFramesOneResponse: whatever an upstream sends, what the relay
// writes to a keep-alive client is exactly one well-framed answer (after
// any interim ones), or nothing at all when it refuses before starting.
// A second answer in the output, or a body the client can delimit only by
// the connection closing, would let an upstream answer requests it was not
// asked (response splitting).
func FuzzRelayFramesOneResponse(f *testing.F) {
	for _, tc := range relayCases {
		if len(tc.in) < 64<<10 {
			f.Add([]byte(tc.in), tc.isHead, tc.close)
		}
	}
	f.Add([]byte(okCL+okCL), false, false)
	f.Add([]byte("HTTP/1.1 200 OK\r\nTrailer: Content-Length\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"), false, false)
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloHTTP/1.1 200 OK\r\n\r\n"), false, false)
	f.Add([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"), true, false)
	f.Fuzz(func(t *testing.T, in []byte, isHead, close bool) {
		res, out, err := relayBytes(in, isHead, close)
		if err != nil {
			if !res.Started && len(out) > 0 {
				t.Fatalf("error %v before starting, yet wrote %q", err, out)
			}
			return
		}
		v, perr := readClientView(out, isHead)
		if perr != nil {
			t.Fatalf("relay accepted %q but the client cannot read %q: %v", in, out, perr)
		}
		r := v.final
		if len(v.rest) > 0 {
			t.Fatalf("bytes after the answer (a second response?): %q\ninput %q", v.rest, in)
		}
		if r.StatusCode != res.Status {
			t.Fatalf("client sees %d, relay reported %d", r.StatusCode, res.Status)
		}
		if r.StatusCode < 200 {
			t.Fatalf("final answer %d", r.StatusCode)
		}
		hasBody := !isHead && r.StatusCode != 204 && r.StatusCode != 304
		if hasBody && r.ContentLength < 0 && len(r.TransferEncoding) == 0 {
			t.Fatalf("body delimited only by the connection closing: %q\ninput %q", out, in)
		}
		if r.Close != close {
			t.Fatalf("client told close=%v, want %v: %q", r.Close, close, out)
		}
		for _, resp := range append(v.interim, r) {
			for _, h := range []http.Header{resp.Header, resp.Trailer} {
				for k, vs := range h {
					// A Trailer header's names are in resp.Trailer
					// without values until the trailer comes; naming
					// X-Flint-* is no forgery.
					if len(vs) > 0 && dropFlint([]byte(k)) {
						t.Fatalf("%s passed on: %q", k, out)
					}
				}
			}
		}
	})
}
