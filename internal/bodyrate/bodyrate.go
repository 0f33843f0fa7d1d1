// Package bodyrate bounds how slowly a client may send a request body.
//
// Header reads are bounded by the servers' ReadHeaderTimeout, but a body is
// read for as long as the handler wants, so a client trickling a body at
// one byte a second holds a concurrency slot until the request timeout.
// Like Kestrel's MinRequestBodyDataRate, a Reader allows a grace period,
// then requires the body to have arrived at a minimum average rate. Only
// time spent waiting inside Read counts: while the proxy is not reading
// (an agent consuming the body slowly pushes back), the client is not to
// blame.
package bodyrate

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync/atomic"
	"time"
)

// ErrTooSlow is returned (wrapped) once the body fell below the rate.
var ErrTooSlow = errors.New("the request body arrived slower than the minimum data rate")

// Config is the minimum rate. A zero MinRate turns the check off.
type Config struct {
	// MinRate is the slowest average body rate accepted after Grace, in
	// bytes per second.
	MinRate int64
	// Grace is waiting time allowed before the rate applies.
	Grace time.Duration
}

// Enabled reports whether bodies are checked.
func (c Config) Enabled() bool { return c.MinRate > 0 }

// Validate reports a configuration problem, naming the flags by prefix.
func (c Config) Validate(flagPrefix string) error {
	if c.MinRate < 0 || c.Grace < 0 {
		return fmt.Errorf("-%smin-body-rate (%d) and -%sbody-grace (%s) must not be negative", flagPrefix, c.MinRate, flagPrefix, c.Grace)
	}
	return nil
}

// Reader enforces Config on one request body. It unblocks a stalled read
// with the connection's read deadline (http.ResponseController), so a
// client that sends nothing at all is caught too.
type Reader struct {
	io.ReadCloser
	rc      *http.ResponseController
	cfg     Config
	total   int64
	waited  time.Duration
	tooSlow atomic.Bool // read by error handlers on other goroutines
	// blockedUntil is the deadline of a Read in progress (unix nanos), else
	// 0: the server cancels the request's context from inside that Read
	// when its deadline fires, so an error handler may run before it
	// returns.
	blockedUntil atomic.Int64
}

// Wrap returns body behind a Reader when cfg is enabled and there is a
// body, and that Reader (else body itself and nil). Give the result to
// the proxy in a copy of the request: the server's own Request.Body must
// stay its *body, which it inspects after the handler to decide whether
// the connection can carry another request.
func Wrap(w http.ResponseWriter, body io.ReadCloser, cfg Config) (io.ReadCloser, *Reader) {
	if !cfg.Enabled() || body == nil || body == http.NoBody {
		return body, nil
	}
	b := &Reader{ReadCloser: body, rc: http.NewResponseController(w), cfg: cfg}
	return b, b
}

// TooSlow reports whether the body was cut for being too slow.
func (b *Reader) TooSlow() bool {
	if b == nil {
		return false
	}
	if b.tooSlow.Load() {
		return true
	}
	until := b.blockedUntil.Load()
	return until != 0 && time.Now().UnixNano() >= until
}

func (b *Reader) Read(p []byte) (int, error) {
	if b.tooSlow.Load() {
		return 0, ErrTooSlow
	}
	allowed := b.cfg.Grace + time.Duration(float64(b.total)/float64(b.cfg.MinRate)*float64(time.Second)) - b.waited
	if allowed <= 0 {
		b.tooSlow.Store(true)
		return 0, ErrTooSlow
	}
	start := time.Now()
	deadline := start.Add(allowed)
	_ = b.rc.SetReadDeadline(deadline)
	b.blockedUntil.Store(deadline.UnixNano())
	n, err := b.ReadCloser.Read(p)
	b.blockedUntil.Store(0)
	b.waited += time.Since(start)
	b.total += int64(n)
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			b.tooSlow.Store(true)
			return n, fmt.Errorf("%w (%d bytes in %s): %w", ErrTooSlow, b.total, b.waited.Round(time.Millisecond), err)
		}
		// The body is over: later reads on the connection are the
		// server's, under its own deadlines.
		_ = b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}
