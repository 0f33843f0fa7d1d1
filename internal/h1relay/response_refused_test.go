package h1relay

import (
	"io"
	"strings"
	"testing"
)

// refusedAnswers hold the framing and header-section rules: answers refused
// as ErrBadResponse, and the near misses that pass.
var refusedAnswers = []relayCase{
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
}

// cutAnswers end early or carry broken chunk framing.
var cutAnswers = []relayCase{
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
