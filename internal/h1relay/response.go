package h1relay

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"syscall"
)

// ErrBadResponse marks an upstream answer the relay will not pass on: a
// malformed status line or header, ambiguous framing (Content-Length with
// Transfer-Encoding, lengths that differ, a coding other than chunked), an
// unrequested 101, too many interim answers, an oversized header section.
var ErrBadResponse = errors.New("malformed response from upstream")

// maxResponseHead bounds one response's header section (net/http's
// transport allows 10 MiB; an agent sending more than this is broken).
const maxResponseHead = 1 << 20

// max1xx bounds the interim (1xx) answers before the final one, as net/http does.
const max1xx = 5

// Response is what the relay learnt of an answer it passed on.
type Response struct {
	Status int
	// Started is set once any byte went to the client: an error after it
	// can only be reported by cutting the connection.
	Started bool
	// Reusable: the upstream connection ended cleanly at the end of the
	// answer and may take another request.
	Reusable bool
	// Reused: the upstream connection had served an earlier request.
	Reused bool
	// Refusal is a refused answer as it came (ErrRefused): its head, and
	// its body when that had a length of at most maxRefusalBody.
	Refusal []byte
}

// maxRefusalBody bounds the body of a refusal the relay keeps.
const maxRefusalBody = 64 << 10

// relayer carries one client connection's scratch state across answers.
type relayer struct {
	lines   []byte  // the header section being read, copied out of the upstream buffer
	fields  []Field // slices of lines
	drop    func(name []byte) bool
	refused func(status int, fields []Field) bool
}

// relay reads the upstream's answer from up and writes it to w: interim
// answers as they come, then the final one, its header section filtered
// (hop-by-hop headers, the headers Connection names, and whatever drop
// refuses) and its body re-framed for a keep-alive HTTP/1.1 client. When
// closing, asked as the head goes out (a shutdown may have begun while the
// upstream worked), says so, the client is told the connection closes
// after it. w is
// flushed whenever up has nothing buffered, so streams go out as they are
// produced and small answers in one write; the end is left in w.
func (rl *relayer) relay(up *bufio.Reader, w *bufio.Writer, isHead bool, closing func() bool) (res Response, err error) {
	if _, err := up.Peek(1); err != nil {
		return res, noAnswer(err)
	}
	for interim := 0; ; interim++ {
		code, err := rl.readHead(up)
		if err != nil {
			return res, err
		}
		res.Status = code
		if code >= 200 {
			break
		}
		if code == http.StatusSwitchingProtocols || interim == max1xx {
			return res, fmt.Errorf("%w: unexpected %d", ErrBadResponse, code)
		}
		// Interim answers (103 Early Hints) pass on at once, as net/http
		// does; they have no body.
		rl.writeHead(w, code, nil, false)
		res.Started = true
		if err := w.Flush(); err != nil {
			return res, clientError{err}
		}
	}
	fr, err := rl.framing(res.Status, isHead)
	if err != nil {
		return res, err
	}
	if rl.refused != nil && !res.Started && rl.refused(res.Status, rl.fields) {
		// A refusal has a short body of known length: it is kept, as the
		// handler may still have to pass it on, and the connection may
		// serve again.
		res.Refusal = append([]byte(nil), rl.lines...)
		if !fr.noBody && !fr.chunked && fr.length >= 0 && fr.length <= maxRefusalBody {
			n := len(res.Refusal)
			res.Refusal = append(res.Refusal, make([]byte, fr.length)...)
			if _, err := io.ReadFull(up, res.Refusal[n:]); err == nil {
				res.Reusable = fr.reusable
			} else {
				res.Refusal = res.Refusal[:n]
			}
		}
		return res, ErrRefused
	}
	rl.writeHead(w, res.Status, &fr, closing())
	res.Started = true
	switch {
	case fr.noBody:
	case fr.chunked:
		err = rl.copyChunked(w, up)
	case fr.length >= 0:
		err = copyN(w, up, fr.length)
	default:
		err = copyUntilEOF(w, up)
	}
	if err != nil {
		return res, err
	}
	// The end stays in w until the handler is done with the request (the
	// server flushes after ServeRelay): a client that sends its next
	// request as soon as it has this answer must find the slot free.
	res.Reusable = fr.reusable
	return res, nil
}

// clientError marks a failure to write to the client (it left).
type clientError struct{ err error }

func (e clientError) Error() string { return "write to client: " + e.err.Error() }
func (e clientError) Unwrap() error { return e.err }

// IsClientError reports whether err is the client's, not the upstream's.
func IsClientError(err error) bool {
	var ce clientError
	return errors.As(err, &ce)
}

// readHead reads a status line and header section into rl.
func (rl *relayer) readHead(up *bufio.Reader) (int, error) {
	rl.lines, rl.fields = rl.lines[:0], rl.fields[:0]
	line, err := readLine(up, &rl.lines)
	if err != nil {
		return 0, err
	}
	// HTTP/1.x SP 3DIGIT [SP reason]
	if len(line) < 12 || string(line[:7]) != "HTTP/1." || (line[7] != '0' && line[7] != '1') || line[8] != ' ' || (len(line) > 12 && line[12] != ' ') {
		return 0, fmt.Errorf("%w: status line %q", ErrBadResponse, truncate(line))
	}
	code := 0
	for _, c := range line[9:12] {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%w: status line %q", ErrBadResponse, truncate(line))
		}
		code = code*10 + int(c-'0')
	}
	if code < 100 {
		return 0, fmt.Errorf("%w: status %d", ErrBadResponse, code)
	}
	http10 := line[7] == '0'
	var spans [maxFields * 4][2]int
	n := 0
	for {
		start := len(rl.lines)
		line, err := readLine(up, &rl.lines)
		if err != nil {
			return 0, err
		}
		if len(line) == 0 {
			break
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 || n == len(spans) || !isToken(line[:colon]) || !validValue(line[colon+1:]) {
			return 0, fmt.Errorf("%w: header line %q", ErrBadResponse, truncate(line))
		}
		spans[n] = [2]int{start, start + colon}
		n++
	}
	// Slices are taken once the buffer no longer grows.
	for i := range n {
		s := spans[i]
		end := bytes.IndexByte(rl.lines[s[1]:], '\n') + s[1]
		rl.fields = append(rl.fields, Field{Name: rl.lines[s[0]:s[1]], Value: trimOWS(rl.lines[s[1]+1 : end-1])})
	}
	if http10 {
		// An HTTP/1.0 answer keeps its connection only when it says so;
		// rather than track that, the relay never reuses one.
		rl.fields = append(rl.fields, Field{Name: []byte("Connection"), Value: []byte("close")})
	}
	return code, nil
}

// readLine appends one CRLF-terminated line (the CRLF included) to buf and
// returns it without the CRLF. A bare LF or CR, or a section over
// maxResponseHead, is an error.
func readLine(up *bufio.Reader, buf *[]byte) ([]byte, error) {
	start := len(*buf)
	for {
		frag, err := up.ReadSlice('\n')
		if len(*buf)+len(frag) > maxResponseHead {
			return nil, fmt.Errorf("%w: header section over %d bytes", ErrBadResponse, maxResponseHead)
		}
		*buf = append(*buf, frag...)
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			if err == io.EOF && start == 0 && len(*buf) == 0 {
				return nil, io.EOF
			}
			return nil, noEOF(err)
		}
		break
	}
	line := (*buf)[start:]
	if len(line) < 2 || line[len(line)-2] != '\r' || bytes.IndexByte(line[:len(line)-2], '\r') >= 0 {
		return nil, fmt.Errorf("%w: line %q does not end in CRLF", ErrBadResponse, truncate(line))
	}
	return line[:len(line)-2], nil
}

// noAnswer classifies a failure before the first byte of an answer as
// forward.Transport does: the upstream closing or resetting the
// connection is ErrNoAnswer (a request on a reused connection may go
// again); a deadline is itself.
func noAnswer(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return fmt.Errorf("%w: %w", ErrNoAnswer, err)
	}
	return err
}

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

func truncate(b []byte) []byte {
	if len(b) > 64 {
		return b[:64]
	}
	return b
}

// framing is how a final answer's body is delimited.
type framing struct {
	noBody, chunked bool
	length          int64 // -1: until the upstream closes
	reusable        bool
	lengthField     int // index of the Content-Length field kept, -1 none
}

func (rl *relayer) framing(code int, isHead bool) (framing, error) {
	fr := framing{length: -1, reusable: true, lengthField: -1}
	te := 0
	for i, f := range rl.fields {
		switch {
		case equalFold(f.Name, "Content-Length"):
			n, ok := parseLength(f.Value)
			if !ok || (fr.lengthField >= 0 && n != fr.length) {
				return fr, fmt.Errorf("%w: Content-Length %q", ErrBadResponse, truncate(f.Value))
			}
			fr.length, fr.lengthField = n, i
		case equalFold(f.Name, "Transfer-Encoding"):
			te++
			if !equalFold(f.Value, "chunked") {
				return fr, fmt.Errorf("%w: Transfer-Encoding %q", ErrBadResponse, truncate(f.Value))
			}
			fr.chunked = true
		case equalFold(f.Name, "Connection"):
			if closes(f.Value) {
				fr.reusable = false
			}
		case equalFold(f.Name, "Trailer"):
			if declaresFraming(f.Value) {
				// net/http's client refuses such an answer (net/http's proxy
				// then answers 502); the relay does not pass it on either.
				return fr, fmt.Errorf("%w: Trailer %q names a framing field", ErrBadResponse, truncate(f.Value))
			}
		}
	}
	if te > 1 || (fr.chunked && fr.lengthField >= 0) {
		return fr, fmt.Errorf("%w: both Content-Length and Transfer-Encoding", ErrBadResponse)
	}
	if isHead || code == http.StatusNoContent || code == http.StatusNotModified {
		fr.noBody = true
		if code == http.StatusNoContent {
			fr.lengthField = -1
		}
		if fr.chunked {
			// A HEAD answer's chunked framing describes the body a GET
			// would get; the client needs no framing for none.
			fr.chunked = false
		}
		return fr, nil
	}
	if !fr.chunked && fr.lengthField < 0 {
		fr.reusable = false // the body ends when the upstream closes
	}
	return fr, nil
}

// declaresFraming reports a Trailer value naming a framing field.
func declaresFraming(v []byte) bool {
	for tok := range listTokens(v) {
		if equalFold(tok, "Content-Length") || equalFold(tok, "Transfer-Encoding") || equalFold(tok, "Trailer") {
			return true
		}
	}
	return false
}

func closes(v []byte) bool {
	for tok := range listTokens(v) {
		if equalFold(tok, "close") {
			return true
		}
	}
	return false
}
