package h1relay

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

const (
	readBufferSize  = 16 << 10 // a request the relay takes fits, head and body
	writeBufferSize = 8 << 10
)

// Handler serves the requests the relay takes.
type Handler interface {
	// ServeRelay serves one request. It returns false, having written and
	// consumed nothing, to hand the connection, this request first, to
	// net/http.
	ServeRelay(ex *Exchange) bool
}

// PortServer serves a listening port: a relaying *Server, or the
// *http.Server behind it alone.
type PortServer interface {
	Serve(net.Listener) error
	Shutdown(context.Context) error
	Close() error
}

// Server serves a listener's connections with the relay, and hands each
// connection to Fallback at the first request the relay does not take;
// Serve wraps Fallback's Handler and ConnContext so that a connection
// handed over for a request the relay does not parse comes back after it
// when it can go on (takeback.go).
type Server struct {
	Handler  Handler
	Fallback *http.Server
	// IdleTimeout bounds the wait for a connection's next request and
	// ReadHeaderTimeout the time to read a head once it has started, as
	// the http.Server fields of the same names.
	IdleTimeout, ReadHeaderTimeout time.Duration
	// MaxHeadBytes hands a request with a longer head to Fallback, which
	// enforces its own MaxHeaderBytes (0: only the read buffer bounds it).
	MaxHeadBytes int
	// Loops, above 0, serves the plain exchanges of a Handler that is a
	// LoopHandler on that many event loops (loop.go), when Serve is given
	// a *net.TCPListener, or a TCPListenerWrapper of one.
	Loops int
	// OnAccept, if set, is called for each connection a loop accepts (a
	// wrapper's Accept, which the loops do not call, would count them).
	OnAccept func()

	loops     []*eventLoop
	loopConns atomic.Int64  // connections the loops serve
	adopted   atomic.Uint32 // connections given back to the loops, to spread them
	handoff   *handoffListener
	mu        sync.Mutex
	ln        net.Listener
	conns     map[*clientConn]struct{}
	closing   atomic.Bool
}

// Serve accepts connections until the listener fails or Shutdown or Close
// is called; it then returns http.ErrServerClosed, as http.Server does.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closing.Load() {
		s.mu.Unlock()
		_ = ln.Close()
		return http.ErrServerClosed
	}
	s.ln = ln
	s.conns = map[*clientConn]struct{}{}
	s.handoff = &handoffListener{addr: ln.Addr(), conns: make(chan net.Conn), done: make(chan struct{})}
	s.wrapFallback()
	s.mu.Unlock()
	// It returns when the handoff listener closes (Shutdown, Close); its
	// connections are Shutdown's and Close's to end.
	go func() { _ = s.Fallback.Serve(s.handoff) }()
	if s.startLoops(ln) {
		for _, l := range s.loops {
			<-l.stopped
		}
		return http.ErrServerClosed
	}
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.closing.Load() {
				return http.ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(5 * time.Millisecond)
				continue
			}
			return err
		}
		c := &clientConn{s: s, nc: nc, accepted: time.Now()}
		if !s.track(c, true) {
			_ = nc.Close()
			return http.ErrServerClosed
		}
		go c.serve()
	}
}

// TCPListenerWrapper is a listener whose connections the loops may accept
// from the TCP listener it wraps (nil: they may not).
type TCPListenerWrapper interface {
	TCPListener() *net.TCPListener
}

// startLoops starts the event loops on ln's descriptor; false: Serve
// accepts on goroutines instead.
func (s *Server) startLoops(ln net.Listener) bool {
	h, ok := s.Handler.(LoopHandler)
	tl, _ := ln.(*net.TCPListener)
	if w, isWrapper := ln.(TCPListenerWrapper); isWrapper {
		tl = w.TCPListener()
	}
	if s.Loops <= 0 || !ok || tl == nil {
		return false
	}
	raw, err := tl.SyscallConn()
	if err != nil {
		return false
	}
	lfd := -1
	if raw.Control(func(fd uintptr) { lfd = int(fd) }) != nil {
		return false
	}
	loops := make([]*eventLoop, 0, s.Loops)
	for range s.Loops {
		l, err := newEventLoop(s, h, lfd)
		if err != nil {
			for _, l := range loops {
				l.closeAll()
			}
			return false
		}
		loops = append(loops, l)
	}
	s.mu.Lock()
	s.loops = loops
	s.mu.Unlock()
	for _, l := range loops {
		go l.run()
	}
	return true
}

// loopsDo sends cmd to every loop; wait waits for them to exit.
func (s *Server) loopsDo(cmd uint32, wait bool) {
	s.mu.Lock()
	loops := s.loops
	s.mu.Unlock()
	for _, l := range loops {
		l.send(cmd)
	}
	for _, l := range loops {
		if wait {
			<-l.exited
		}
	}
}

// trackAlways tracks a connection a loop handed over mid-exchange, even
// when shutting down: Shutdown must wait for its exchange.
func (s *Server) trackAlways(c *clientConn) {
	s.mu.Lock()
	s.conns[c] = struct{}{}
	s.mu.Unlock()
}

func (s *Server) track(c *clientConn, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if add {
		if s.closing.Load() {
			return false
		}
		s.conns[c] = struct{}{}
	} else {
		delete(s.conns, c)
	}
	return true
}

// Shutdown stops accepting, closes idle connections, lets each active one
// finish its request (its answer then says Connection: close), and waits
// for them and for the connections net/http serves, until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stop()
	fallback := make(chan error, 1)
	go func() { fallback <- s.Fallback.Shutdown(ctx) }()
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		s.closeIdle()
		s.mu.Lock()
		n := len(s.conns) + int(s.loopConns.Load())
		s.mu.Unlock()
		if n == 0 {
			s.loopsDo(cmdExit, true)
			break
		}
		select {
		case <-ctx.Done():
			<-fallback
			return ctx.Err()
		case <-t.C:
		}
	}
	return <-fallback
}

// Close closes every connection at once, cutting their upstream exchanges.
func (s *Server) Close() error {
	s.stop()
	s.loopsDo(cmdClose, true)
	s.mu.Lock()
	for c := range s.conns {
		c.cut()
		_ = c.nc.Close()
	}
	s.mu.Unlock()
	return s.Fallback.Close()
}

// CutUpstreams ends every exchange in progress as its upstream connection
// failing would (the drain deadline): answers not started become the
// handler's error, streams end at a message boundary.
func (s *Server) CutUpstreams() {
	s.loopsDo(cmdCut, false)
	s.mu.Lock()
	for c := range s.conns {
		c.cut()
	}
	s.mu.Unlock()
}

func (s *Server) stop() {
	if s.closing.Swap(true) {
		return
	}
	// The loops stop using the listener's descriptor before it closes.
	s.mu.Lock()
	loops := s.loops
	s.mu.Unlock()
	for _, l := range loops {
		l.send(cmdStopAccept)
		<-l.stopped
	}
	s.mu.Lock()
	if s.ln != nil {
		_ = s.ln.Close()
		s.handoff.close()
	}
	s.mu.Unlock()
}

func (s *Server) closeIdle() {
	s.loopsDo(cmdCloseIdle, false)
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		// A connection that has not sent its first request yet may have it
		// on the wire: as net/http, it gets a few seconds first.
		if c.state.CompareAndSwap(stateIdle, stateClosed) ||
			(time.Since(c.accepted) > newConnGrace && c.state.CompareAndSwap(stateNew, stateClosed)) {
			_ = c.nc.Close()
		}
	}
}

// newConnGrace is how long Shutdown leaves a connection that has not sent
// a request yet (net/http's is 5 s).
const newConnGrace = 5 * time.Second

const (
	stateNew int32 = iota
	stateIdle
	stateActive
	stateClosed
)

// clientConn is one client connection the relay serves.
type clientConn struct {
	s        *Server
	nc       net.Conn
	accepted time.Time
	resumed  bool // taken back from the fallback: between requests, not new
	br       *bufio.Reader
	bw       *bufio.Writer
	state    atomic.Int32
	rl       relayer
	ex       Exchange
	watch    clientWatch

	upMu sync.Mutex
	up   net.Conn // the upstream connection of the exchange in progress
}

func (c *clientConn) setUpstream(nc net.Conn) {
	c.upMu.Lock()
	c.up = nc
	c.upMu.Unlock()
}

// cut wakes the exchange in progress, if any, as its upstream failing would.
func (c *clientConn) cut() {
	c.upMu.Lock()
	if c.up != nil {
		_ = c.up.SetDeadline(aLongTimeAgo)
	}
	c.upMu.Unlock()
}

var aLongTimeAgo = time.Unix(1, 0)

func (c *clientConn) serve() {
	c.br = bufio.NewReaderSize(c.nc, readBufferSize)
	c.bw = bufio.NewWriterSize(c.nc, writeBufferSize)
	c.ex.c = c
	if host, _, err := net.SplitHostPort(c.nc.RemoteAddr().String()); err == nil {
		c.ex.RemoteIP = host
	}
	c.serveFrom(!c.resumed)
}

// serveFrom serves the connection's requests, first its first one.
func (c *clientConn) serveFrom(first bool) {
	handedOff := false
	defer func() {
		c.s.track(c, false)
		if !handedOff {
			_ = c.nc.Close()
		}
	}()
	for ; ; first = false {
		if c.br.Buffered() == 0 {
			if c.s.closing.Load() && !first {
				// Between requests, shutting down: done. A new connection's
				// first request may be on the wire; it is served, and its
				// answer says Connection: close (as net/http does).
				return
			}
			waiting := stateNew
			if !first {
				waiting = stateIdle
				c.state.Store(stateIdle)
			}
			if c.s.IdleTimeout > 0 {
				_ = c.nc.SetReadDeadline(time.Now().Add(c.s.IdleTimeout))
			}
			if _, err := c.br.Peek(1); err != nil {
				return
			}
			if !c.state.CompareAndSwap(waiting, stateActive) {
				return // Shutdown closed it as idle
			}
		} else {
			c.state.Store(stateActive)
		}
		headLen, err := c.readHead()
		if err != nil {
			if err == errHeadTooLarge {
				handedOff = c.handOff(nil, true) // net/http answers 431
			}
			return // a stalled or broken head: closed, as net/http does
		}
		ex := &c.ex
		ex.reset()
		buf, _ := c.br.Peek(c.br.Buffered())
		if (c.s.MaxHeadBytes > 0 && headLen > c.s.MaxHeadBytes) || !parseHead(buf[:headLen], &ex.Head) || headLen+int(ex.Head.ContentLength) > len(buf) {
			handedOff = c.handOff(nil, true)
			return
		}
		ex.Body = buf[headLen : headLen+int(ex.Head.ContentLength)]
		ex.consumed = headLen + len(ex.Body)
		ex.closingNow()
		if !c.s.Handler.ServeRelay(ex) {
			handedOff = c.handOff(ex.note, false)
			return
		}
		if err := c.bw.Flush(); err != nil {
			return
		}
		if ex.Closing() {
			return
		}
		_, _ = c.br.Discard(ex.consumed)
	}
}

// readHead waits for a complete request head in the read buffer (under
// ReadHeaderTimeout) and returns its length, blank line included.
func (c *clientConn) readHead() (int, error) {
	deadlineSet := false
	for {
		buf, _ := c.br.Peek(c.br.Buffered())
		if i := bytes.Index(buf, []byte("\r\n\r\n")); i >= 0 {
			if deadlineSet {
				_ = c.nc.SetReadDeadline(time.Time{})
			}
			return i + 4, nil
		}
		if len(buf) == readBufferSize {
			return 0, errHeadTooLarge
		}
		if !deadlineSet && c.s.ReadHeaderTimeout > 0 {
			_ = c.nc.SetReadDeadline(time.Now().Add(c.s.ReadHeaderTimeout))
			deadlineSet = true
		}
		if _, err := c.br.Peek(len(buf) + 1); err != nil {
			return 0, err
		}
	}
}

// errHeadTooLarge is a head that does not fit the read buffer: net/http,
// with its own limit, serves or refuses it.
var errHeadTooLarge = errors.New("request head larger than the relay's buffer")

// handOff gives the connection, with the bytes read and not served, to
// the fallback server. It reports whether the fallback took it. back lets
// the connection come back after this request (takeback.go): the relay
// handing over a request it does not parse (a chunked body, a long head),
// not the handler refusing one (a wait, a protocol the handler leaves to
// net/http), which would likely refuse the next one as well.
func (c *clientConn) handOff(note any, back bool) bool {
	_ = c.nc.SetReadDeadline(time.Time{})
	buffered, _ := c.br.Peek(c.br.Buffered())
	nc, pending := unwrapConn(c.nc, bytes.Clone(buffered))
	return c.s.handoff.give(&prefixConn{Conn: nc, pending: pending, note: note, back: back})
}

// Note is what the handler left with a connection it handed off
// (Exchange.HandOff), for the fallback server's ConnContext; nil for none.
func Note(c net.Conn) any {
	if pc, ok := c.(*prefixConn); ok {
		return pc.note
	}
	return nil
}

// prefixConn replays the bytes the relay read before handing off.
type prefixConn struct {
	net.Conn
	pending []byte
	note    any
	back    bool // may come back to the relay after its first request
}

func (p *prefixConn) Read(b []byte) (int, error) {
	if len(p.pending) > 0 {
		n := copy(b, p.pending)
		p.pending = p.pending[n:]
		return n, nil
	}
	return p.Conn.Read(b)
}

// SyscallConn is the network connection's, so that the client watch
// (watch.go) works on a connection that replays bytes.
func (p *prefixConn) SyscallConn() (syscall.RawConn, error) {
	sc, ok := p.Conn.(syscall.Conn)
	if !ok {
		return nil, errors.ErrUnsupported
	}
	return sc.SyscallConn()
}

// handoffListener is the fallback server's listener: it accepts the
// connections the relay hands over.
type handoffListener struct {
	addr      net.Addr
	conns     chan net.Conn
	done      chan struct{}
	closeOnce sync.Once
}

func (l *handoffListener) give(c net.Conn) bool {
	select {
	case l.conns <- c:
		return true
	case <-l.done:
		return false
	}
}

func (l *handoffListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *handoffListener) close()         { l.closeOnce.Do(func() { close(l.done) }) }
func (l *handoffListener) Close() error   { l.close(); return nil }
func (l *handoffListener) Addr() net.Addr { return l.addr }
