package proxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flint-dev/flint/internal/bodyrate"
	"github.com/flint-dev/flint/internal/upgrade"
	"github.com/flint-dev/flint/internal/wire"
)

// clientGone is not a header value: the client left while waiting, so
// nothing is written.
const clientGone = "client-gone"

// statusClientClosed labels requests whose client left before an answer
// (nginx's convention); nothing is written for them.
const statusClientClosed = 499

var jsonContentType = []string{"application/json"}

// ServeHTTP is the serving port's handler: admission, then the agent.
func (s *Sidecar) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.gatewayToken.accepts(r.Header.Get(wire.HeaderGatewayToken)) {
		writeError(w, http.StatusForbidden, "bypass", "requests must come through the Flint gateway", nil)
		return
	}
	// Never the agent's to see, even from a gateway that has a token for a
	// sidecar that wants none (a rollout that has not reached every pod).
	r.Header.Del(wire.HeaderGatewayToken)
	if upgrade.Invalid(r.Header) {
		writeError(w, http.StatusBadRequest, "bad-upgrade", "the Upgrade header names no valid protocol", nil)
		return
	}
	if isStreamRequest(r) { // one the drain may end early (drain_streams.go)
		var untrack func()
		w, r, untrack = s.trackStream(w, r)
		defer untrack()
	}
	start := s.acc.now()
	if s.draining.Load() && r.ProtoMajor == 1 && upgrade.Protocol(r.Header) == "" {
		// The gateway's pooled connection closes after this response rather
		// than being cut at shutdown while it may be sending on it.
		w.Header()["Connection"] = []string{"close"}
	}
	switch s.admit(start) {
	case queueFull:
		s.reject(w, start, wire.RejectCapacity)
		return
	case mustWait:
		if reason := s.wait(r.Context(), start); reason != "" {
			s.reject(w, start, reason)
			return
		}
	}
	if s.aborted() {
		// The drain deadline cancels every request at once, but a waiter can
		// take a slot freed by a cancelled stream before its own
		// cancellation lands; the agent must not see it.
		s.finishAdmitted()
		s.reject(w, start, wire.RejectShutdown)
		return
	}
	s.requests.Add(1)

	if r.ProtoMajor == 1 && r.ContentLength != 0 {
		// The agent may answer, and start a stream, before the transport has
		// read the end of the request body: after the declared length it
		// reads once more to check for extra bytes. Without full duplex the
		// server closes the body as the answer's headers go out, that read
		// fails, and the transport cuts the agent's connection mid-stream.
		_ = http.NewResponseController(w).EnableFullDuplex()
	}
	body, slowBody := bodyrate.Wrap(w, r.Body, s.cfg.BodyRate) // a trickled body gets 408 (upstreamError)
	if r.ProtoMajor == 1 && r.ContentLength != 0 {
		// Full duplex needs the body closed before the handler returns
		// (golang/go#68560), deferred so it runs after the slot is back.
		defer closeBody(r.Body)
	}

	rec := recorders.Get().(*recorder)
	rec.ResponseWriter, rec.body = w, slowBody
	// Deferred so it runs on panics too: ReverseProxy aborts a broken
	// stream with http.ErrAbortHandler, and the slot must come back.
	defer s.finish(rec, start)
	if d := s.cfg.RequestTimeout; d > 0 {
		ctx, cancel := context.WithTimeout(r.Context(), d)
		defer cancel()
		r = r.WithContext(ctx)
	} else if slowBody != nil {
		r = r.WithContext(r.Context())
	}
	// Only on the copy: the server's Request keeps its own body (Wrap).
	r.Body = body
	s.proxy.ServeHTTP(rec, r)
}

// admission is where admit leaves a request.
type admission int

const (
	admitted  admission = iota // holds a slot, counted in flight
	mustWait                   // holds a place in the queue: the agent is not ready or every slot is busy
	queueFull                  // refused: the queue is full too
)

// admit is both serving paths' admission (ServeHTTP's and the relay's):
// a place in the breaker's bounded queue, then a slot if one is free now
// and the agent is ready.
func (s *Sidecar) admit(start time.Duration) admission {
	if s.br != nil && !s.br.enter() {
		return queueFull
	}
	if !s.gate.isReady() || (s.br != nil && !s.br.tryAcquire()) {
		return mustWait
	}
	s.acc.change(start, 1, 0)
	return admitted
}

// admitNow is admit for a caller that cannot wait (the relay's event
// loops): a slot now, with the agent ready, or nothing taken.
func (s *Sidecar) admitNow(start time.Duration) bool {
	if !s.gate.isReady() {
		return false
	}
	if s.br != nil {
		if !s.br.enter() {
			return false
		}
		if !s.br.tryAcquire() {
			s.br.leave()
			return false
		}
	}
	s.acc.change(start, 1, 0)
	return true
}

// closeBody closes a full-duplex HTTP/1 request body before the handler
// returns. When the agent fails or answers before the transport has read
// the whole body (a killed agent, an early 413), the server drains the rest
// only after the handler returns, once it has stopped its own background
// read of the connection; reaching the body's end restarts that read, and
// the next request's read on the same connection then panics with
// "invalid concurrent Body.Read call" (golang/go#68560), dropping the
// gateway's kept-alive connection and whatever it sends next. The
// transport's writer may also still be reading the body after RoundTrip
// returns. Closing here drains the body while the handler still runs, so
// the server stops the read it restarts; the body's lock makes Close wait
// for a read still in progress, and later reads fail without touching the
// connection.
//
// When the agent answered early (a 413 for a body over its own limit) the
// rest of the body is read and dropped first, up to maxDrain: the server
// would read only 256 KiB and then close the connection while the gateway
// is still sending, and a Go transport that gets its write error before
// the answer reports the error (502) instead of the agent's answer.
func closeBody(b io.ReadCloser) {
	_, _ = io.CopyN(io.Discard, b, maxDrain)
	_ = b.Close()
}

// maxDrain is the gateway's default -max-body-bytes: larger bodies are
// refused before they reach a replica.
const maxDrain = 32 << 20

func (s *Sidecar) finish(rec *recorder, start time.Duration) {
	end := s.finishAdmitted()
	code := rec.code
	if code == 0 {
		code = http.StatusOK
	}
	s.metrics.observe(code, end-start)
	*rec = recorder{}
	recorders.Put(rec)
}

// finishAdmitted gives back the slot and place before the in-flight count
// drops, so anyone who sees the count fall can immediately get a slot.
func (s *Sidecar) finishAdmitted() (end time.Duration) {
	if s.br != nil {
		s.br.release()
		s.br.leave()
	}
	end = s.acc.now()
	s.acc.change(end, -1, 0)
	return end
}

func (s *Sidecar) leave() {
	if s.br != nil {
		s.br.leave()
	}
}

// wait holds a request, counted as queued, until the agent is ready and a
// slot is free. It returns "" with a slot taken, or the rejection reason
// with the request's place in the queue given up.
func (s *Sidecar) wait(ctx context.Context, start time.Duration) string {
	s.acc.change(start, 0, 1)
	reason := s.waitTurn(ctx)
	if reason != "" {
		s.leave()
		s.acc.change(s.acc.now(), 0, -1)
		return reason
	}
	s.acc.change(s.acc.now(), 1, -1)
	return ""
}

func (s *Sidecar) waitTurn(ctx context.Context) string {
	if !s.gate.isReady() {
		if s.cfg.ReadyWait <= 0 {
			return wire.RejectNotReady
		}
		t := time.NewTimer(s.cfg.ReadyWait)
		select {
		case <-s.gate.wait():
			t.Stop()
		case <-t.C:
			return wire.RejectNotReady
		case <-ctx.Done():
			t.Stop()
			return s.canceledReason()
		}
	}
	if s.br == nil {
		return ""
	}
	t := time.NewTimer(s.cfg.QueueTimeout)
	defer t.Stop()
	if s.br.acquire(ctx.Done(), t.C) {
		return ""
	}
	if ctx.Err() != nil {
		return s.canceledReason()
	}
	return wire.RejectCapacity
}

// canceledReason tells a drain-deadline cut (worth retrying elsewhere) from
// a client that left (nothing to answer).
func (s *Sidecar) canceledReason() string {
	if s.aborted() {
		return wire.RejectShutdown
	}
	return clientGone
}

// reject answers 503 for a request the agent never saw. Overload is when
// this runs most, so everything but the header map entries is precomputed.
func (s *Sidecar) reject(w http.ResponseWriter, start time.Duration, reason string) {
	code := http.StatusServiceUnavailable
	if reason == clientGone {
		code = statusClientClosed
		// Nobody reads it, but without it the server would send an implicit 200.
		w.WriteHeader(code)
	} else {
		h := w.Header()
		h["Content-Type"] = jsonContentType
		h["Retry-After"] = s.retryAfterHdr
		h[wire.HeaderRejected] = s.rejectedHdr[reason]
		w.WriteHeader(code)
		_, _ = w.Write(s.rejectBody[reason])
		if reason == wire.RejectCapacity {
			// stats.Stats.RejectedTotal is capacity refusals only: demand the
			// autoscaler should add replicas for. The rest are in metrics.
			s.rejected.Add(1)
		}
		s.metrics.rejected(reason)
	}
	s.metrics.observe(code, s.acc.now()-start)
}

// rejectBodies precomputes the 503 JSON bodies.
func rejectBodies(cfg Config, retryAfter int) map[string][]byte {
	capacity := fmt.Sprintf("all %d concurrency slots are busy and the queue of %d is full", cfg.Concurrency, cfg.QueueDepth)
	if cfg.QueueDepth > 0 {
		capacity = fmt.Sprintf("all %d concurrency slots are busy; queued requests wait at most %s", cfg.Concurrency, cfg.QueueTimeout)
	}
	msgs := map[string]string{
		wire.RejectCapacity: capacity,
		wire.RejectNotReady: "the agent is not ready (it did not answer within " + cfg.ReadyWait.String() + ")",
		wire.RejectShutdown: "the replica shut down before a slot freed",
	}
	out := make(map[string][]byte, len(msgs))
	for reason, msg := range msgs {
		out[reason] = errorBody(msg, reason, &retryAfter)
	}
	return out
}

func errorBody(msg, reason string, retryAfter *int) []byte {
	return wire.ErrorBody{Error: msg, Reason: reason, RetryAfterSeconds: retryAfter}.JSON()
}

// writeError writes a JSON error; rejected, when set, marks the request as
// one the agent never saw.
func writeError(w http.ResponseWriter, code int, reason, msg string, rejected []string) {
	h := w.Header()
	h["Content-Type"] = jsonContentType
	h.Del("Content-Length")
	if rejected != nil {
		h[wire.HeaderRejected] = rejected
	}
	w.WriteHeader(code)
	_, _ = w.Write(errorBody(msg, reason, nil))
}

// recorder notes the status for metrics and whether the connection was
// hijacked. Unwrap lets http.ResponseController (which ReverseProxy uses to
// flush and hijack) reach the server's writer.
type recorder struct {
	http.ResponseWriter
	code     int
	hijacked bool
	body     *bodyrate.Reader // the request body, when its rate is checked
}

var recorders = sync.Pool{New: func() any { return new(recorder) }}

func (r *recorder) WriteHeader(code int) {
	if r.code == 0 && code >= 200 { // 1xx (e.g. 103 Early Hints) are not the final status
		r.code = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

func (r *recorder) FlushError() error {
	return http.NewResponseController(r.ResponseWriter).Flush()
}

func (r *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(r.ResponseWriter).Hijack()
	if err == nil {
		r.hijacked = true
		if r.code == 0 {
			r.code = http.StatusSwitchingProtocols
		}
	}
	return conn, brw, err
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// rateLimitedLog keeps a failing agent (hundreds of refused requests a
// second) from flooding the log: one line per second, with a count of what
// was skipped.
type rateLimitedLog struct {
	next    atomic.Int64 // unix nanos before which lines are skipped
	skipped atomic.Int64
}

func (l *rateLimitedLog) warn(log *slog.Logger, msg string, args ...any) {
	now := time.Now().UnixNano()
	next := l.next.Load()
	if now < next || !l.next.CompareAndSwap(next, now+int64(time.Second)) {
		l.skipped.Add(1)
		return
	}
	if n := l.skipped.Swap(0); n > 0 {
		args = append(args, "similar_skipped", n)
	}
	log.Warn(msg, args...)
}

// retryAfterHeader renders Retry-After once.
func retryAfterHeader(seconds int) []string { return []string{strconv.Itoa(seconds)} }
