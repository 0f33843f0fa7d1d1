package proxy

import (
	"context"
	"mime"
	"net/http"
	"strings"
	"sync"
	"time"
)

// boundaryWait bounds how long an event stream caught mid-event when the
// drain ends it gets to reach the end of that event; past it the stream
// ends anyway, and the client's parser drops the partial event (SSE: an
// event is only dispatched at its blank line), as if it had not been sent.
const boundaryWait = time.Second

// Long-lived event streams: a GET answered with text/event-stream (an MCP
// session's standalone stream, an EventSource) answers no request in
// progress; it stays open for as long as the client keeps its session, so
// a drain that waits for it waits for the drain timeout, and the pod takes
// that long to go. During a drain, once the serving port has closed and
// -event-stream-grace has passed, the sidecar ends such streams between two
// events, as a clean end of the response: the client reconnects (an MCP
// client re-GETs with Last-Event-ID; an EventSource reconnects on its own)
// and the gateway sends it to a replica that stays. Requests in progress,
// POSTs that stream their answer included, are not streams of this kind
// and keep the whole drain timeout.

// isStreamRequest reports whether r asks for a long-lived event stream: a
// GET that accepts text/event-stream (and is no upgrade). Whether it is one
// is settled by the response's Content-Type.
func isStreamRequest(r *http.Request) bool {
	if r.Method != http.MethodGet || r.Header.Get("Upgrade") != "" {
		return false
	}
	for _, v := range r.Header["Accept"] {
		if strings.Contains(v, "text/event-stream") {
			return true
		}
	}
	return false
}

// eventStreams tracks the open requests that may be long-lived event
// streams, so that the drain can end them.
type eventStreams struct {
	mu     sync.Mutex
	open   map[*eventStream]struct{}
	ending bool // the drain has ended them; later ones end as they start
}

// trackStream gives a request for an event stream (isStreamRequest) a
// context the drain can cancel and a writer that knows where events end;
// ServeHTTP serves it with those and calls untrack when done.
func (s *Sidecar) trackStream(w http.ResponseWriter, r *http.Request) (_ http.ResponseWriter, _ *http.Request, untrack func()) {
	ctx, cancel := context.WithCancel(r.Context())
	es := &eventStream{ResponseWriter: w, cancel: cancel, tail: [4]byte{'\n', '\n', '\n', '\n'}}
	s.streams.add(es)
	return es, r.WithContext(ctx), func() {
		s.streams.remove(es)
		cancel()
	}
}

func (t *eventStreams) add(es *eventStream) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.open == nil {
		t.open = map[*eventStream]struct{}{}
	}
	t.open[es] = struct{}{}
	if t.ending {
		es.end()
	}
}

func (t *eventStreams) remove(es *eventStream) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.open, es)
	es.stopTimer()
}

// endAll ends every open event stream at its next event boundary, and
// those that open later as they start. It returns how many were open.
func (t *eventStreams) endAll() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.ending = true
	for es := range t.open {
		es.end()
	}
	return len(t.open)
}

// eventStream is the response writer of a request that may be an event
// stream. Once the drain asks it to end, it cancels the request at the
// first point where the bytes sent end an event: the upstream read then
// fails, which the proxy turns into a clean end of the response (see
// streamBody), and anything read after that point is dropped rather than
// sent as a partial event.
type eventStream struct {
	http.ResponseWriter
	cancel context.CancelFunc

	mu      sync.Mutex
	started bool    // the response's header has gone out
	sse     bool    // ... as a 2xx text/event-stream
	tail    [4]byte // the last bytes sent, to find event boundaries
	ending  bool    // the drain asked it to end
	ended   bool    // the request is cancelled; later writes are dropped
	writing bool    // a write is in progress, its bytes not in tail yet
	timer   *time.Timer
}

func (es *eventStream) WriteHeader(code int) {
	if !es.beginWrite(code) {
		return
	}
	es.ResponseWriter.WriteHeader(code)
	es.endWrite(nil)
}

func (es *eventStream) Write(p []byte) (int, error) {
	if !es.beginWrite(0) {
		return len(p), nil
	}
	n, err := es.ResponseWriter.Write(p)
	es.endWrite(p[:n])
	return n, err
}

// beginWrite notes the response's kind when its header goes out (code 0:
// an implicit 200) and reports whether to write at all. The write itself
// runs unlocked, since a slow client may hold it; meanwhile writing keeps
// end from cutting in before the bytes being written are accounted for.
func (es *eventStream) beginWrite(code int) bool {
	es.mu.Lock()
	defer es.mu.Unlock()
	if es.ended {
		return false
	}
	if !es.started && (code == 0 || code >= 200) {
		es.started = true
		mt, _, _ := mime.ParseMediaType(es.Header().Get("Content-Type"))
		es.sse = (code == 0 || code < 300) && mt == "text/event-stream"
	}
	es.writing = true
	return true
}

func (es *eventStream) endWrite(written []byte) {
	es.mu.Lock()
	defer es.mu.Unlock()
	es.writing = false
	es.note(written)
	es.endAtBoundaryLocked()
}

// FlushError flushes what was written; once ended there is nothing to.
func (es *eventStream) FlushError() error {
	es.mu.Lock()
	ended := es.ended
	es.mu.Unlock()
	if ended {
		return nil
	}
	return http.NewResponseController(es.ResponseWriter).Flush()
}

func (es *eventStream) Unwrap() http.ResponseWriter { return es.ResponseWriter }

// end asks the stream to end at its next event boundary (at once when it
// is between events), or after boundaryWait whatever it is doing. A
// response that turns out not to be an event stream is left alone.
func (es *eventStream) end() {
	es.mu.Lock()
	defer es.mu.Unlock()
	if es.ending {
		return
	}
	es.ending = true
	if es.endAtBoundaryLocked() || (es.started && !es.sse) {
		return
	}
	es.timer = time.AfterFunc(boundaryWait, func() {
		es.mu.Lock()
		defer es.mu.Unlock()
		if es.sse && !es.ended {
			es.ended = true
			es.cancel()
		}
	})
}

// endAtBoundaryLocked ends an event stream the drain asked to end if the
// bytes sent so far end an event. es.mu is held.
func (es *eventStream) endAtBoundaryLocked() bool {
	if !es.ending || es.ended || es.writing || !es.sse || !es.betweenEvents() {
		return false
	}
	es.ended = true
	es.cancel()
	return true
}

func (es *eventStream) stopTimer() {
	es.mu.Lock()
	defer es.mu.Unlock()
	if es.timer != nil {
		es.timer.Stop()
	}
}

func (es *eventStream) note(b []byte) {
	if len(b) >= len(es.tail) {
		copy(es.tail[:], b[len(b)-len(es.tail):])
		return
	}
	n := copy(es.tail[:], es.tail[len(b):])
	copy(es.tail[n:], b)
}

// betweenEvents reports whether the bytes sent end with a blank line (LF
// LF, CR CR or CR LF CR LF): the end of an event, or of a comment.
func (es *eventStream) betweenEvents() bool {
	t := es.tail
	return (t[2] == '\n' && t[3] == '\n') || (t[2] == '\r' && t[3] == '\r') || string(t[:]) == "\r\n\r\n"
}
