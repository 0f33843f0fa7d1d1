package gateway

import (
	"context"
	"errors"
	"io"
	"mime"
	"net/http"
	"sync"
	"time"
)

// keepAliveComment is an SSE comment: every client ignores it, but it
// resets the idle timers of proxies and clients along the way.
var keepAliveComment = []byte(": keep-alive\n\n")

func isEventStream(h http.Header) bool {
	mt, _, err := mime.ParseMediaType(h.Get("Content-Type"))
	return err == nil && mt == "text/event-stream"
}

// serveEventStream prepares an MCP or A2A event stream for the trip to the
// client: no buffering by proxies in front of the gateway (the header nginx
// and others honour), keep-alive comments while it is silent, a clean end
// rather than a cut connection when the request's time is up, and, for a
// session's standalone stream, a clean end when its replica goes away or
// the gateway shuts down. ReverseProxy already flushes every event.
func (g *Gateway) serveEventStream(res *http.Response, c *call) {
	res.Header.Set("X-Accel-Buffering", "no")
	if res.Header.Get("Cache-Control") == "" {
		res.Header.Set("Cache-Control", "no-cache")
	}
	s := newSSEBody(res.Body, res.Request.Context(), g.mcp.keepAlive)
	res.Body = s
	if c.proto.pin != nil && res.Request.Method == http.MethodGet {
		g.mcp.streams.add(s)
		s.onClose = func() { g.mcp.streams.remove(s) }
		go g.endWhenGone(c, s)
	}
}

// streamSet tracks the session streams open through this gateway.
type streamSet struct {
	mu sync.Mutex
	m  map[*sseBody]struct{}
}

func (s *streamSet) add(b *sseBody) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[*sseBody]struct{}{}
	}
	s.m[b] = struct{}{}
}

func (s *streamSet) remove(b *sseBody) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, b)
}

// endAll ends every session stream cleanly. It runs when the gateway's
// server shuts down: http.Server.Shutdown waits for handlers, and a session
// stream's handler would otherwise only return at the shutdown deadline.
// Clients reconnect, to this gateway's successor or a sibling, and keep
// their sessions: the token routes without this instance.
func (s *streamSet) endAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for b := range s.m {
		b.stop()
	}
}

// sseBody relays an event stream. A goroutine reads the replica's stream so
// that Read can also wake up to send a keep-alive when the stream has been
// silent, or to end it; keep-alives and ends are placed only between
// events, where the bytes so far end with a blank line.
type sseBody struct {
	src       io.ReadCloser
	ctx       context.Context
	keepAlive time.Duration
	onClose   func()

	chunks   chan sseChunk
	stopped  chan struct{}
	closed   chan struct{}
	stopOnce sync.Once
	once     sync.Once

	// Read's own state; ReverseProxy reads from one goroutine.
	pending []byte
	err     error
	tail    [4]byte
	timer   *time.Timer
}

type sseChunk struct {
	data []byte
	err  error
}

func newSSEBody(src io.ReadCloser, ctx context.Context, keepAlive time.Duration) *sseBody {
	s := &sseBody{
		src: src, ctx: ctx, keepAlive: keepAlive,
		chunks: make(chan sseChunk), stopped: make(chan struct{}), closed: make(chan struct{}),
		tail: [4]byte{'\n', '\n', '\n', '\n'}, // the start of a stream is between events
	}
	go s.pump()
	return s
}

func (s *sseBody) pump() {
	buf := make([]byte, 32<<10)
	for {
		n, err := s.src.Read(buf)
		c := sseChunk{data: append([]byte(nil), buf[:n]...), err: err}
		select {
		case s.chunks <- c:
		case <-s.closed:
			return
		}
		if err != nil {
			return
		}
	}
}

// stop ends the stream at the next Read (immediately if it is waiting).
func (s *sseBody) stop() { s.stopOnce.Do(func() { close(s.stopped) }) }

func (s *sseBody) Read(p []byte) (int, error) {
	for {
		if len(s.pending) > 0 {
			n := copy(p, s.pending)
			s.pending = s.pending[n:]
			s.note(p[:n])
			return n, nil
		}
		if s.err != nil {
			return 0, s.err
		}
		var tick <-chan time.Time
		if s.keepAlive > 0 {
			if s.timer == nil {
				s.timer = time.NewTimer(s.keepAlive)
			} else {
				s.timer.Reset(s.keepAlive)
			}
			tick = s.timer.C
		}
		select {
		case c := <-s.chunks:
			s.pending = c.data
			s.err = s.endOf(c.err)
		case <-s.stopped:
			// Mid-event the partial event is dropped by the client's
			// parser, which is as good as not having sent it.
			s.err = io.EOF
		case <-tick:
			if s.betweenEvents() {
				s.pending = keepAliveComment
			}
		}
	}
}

// endOf maps the replica stream's end to the client's: when the request's
// context ended it (timeouts.request) or the client left, the stream ends
// cleanly (io.EOF) rather than aborting the client's connection mid-chunk;
// an SSE client then reconnects.
func (s *sseBody) endOf(err error) error {
	if err != nil && !errors.Is(err, io.EOF) && s.ctx.Err() != nil {
		return io.EOF
	}
	return err
}

func (s *sseBody) note(b []byte) {
	if len(b) >= len(s.tail) {
		copy(s.tail[:], b[len(b)-len(s.tail):])
		return
	}
	copy(s.tail[:], append(s.tail[len(b):], b...))
}

// betweenEvents reports whether the bytes so far end with a blank line
// (LF LF, CR CR or CR LF CR LF), the end of an event.
func (s *sseBody) betweenEvents() bool {
	t := s.tail
	return (t[2] == '\n' && t[3] == '\n') || (t[2] == '\r' && t[3] == '\r') || string(t[:]) == "\r\n\r\n"
}

func (s *sseBody) Close() error {
	var err error
	s.once.Do(func() {
		close(s.closed)
		s.stop()
		if s.timer != nil {
			s.timer.Stop()
		}
		err = s.src.Close()
		if s.onClose != nil {
			s.onClose()
		}
	})
	return err
}
