package h1relay

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Event loops (Server.Loops) serve the common exchange without a goroutine
// per connection: each loop owns an epoll set on its own OS thread, reads a
// socket only once epoll says it has bytes and never parks, as nginx does.
// Go's netpoller tries every read first (EAGAIN when the next request or
// the answer is not there yet) and parks and wakes a goroutine for each
// wait, which costs a proxy hop a third of its CPU (docs/benchmarks.md).
//
// A loop serves a request whose head and body are in its buffer, that the
// handler admits at once (LoopHandler), on a connection of the loop's own
// pool, and whose answer is framed by a length and fits the loop's answer
// buffer: once it is all there, the relayer that goroutines use relays it
// from memory, so both paths pass on the same bytes. Anything else leaves
// the loop for a goroutine on the same code as without loops: a request
// the handler does not admit at once, a long head or body, whose client
// connection then stays with the goroutine path (and net/http, as there);
// an answer that streams (chunked, until close, interim, large), whose
// exchange the goroutine finishes.

// LoopHandler is a Handler whose plain requests the event loops serve.
type LoopHandler interface {
	Handler
	// AdmitLoop admits ex at once and names its upstream (an IP address and
	// port) and how the exchange goes on there; or returns ok false having
	// done nothing, and ServeRelay gets the request on a goroutine. The
	// loop then writes the head WriteLoopHead writes and the body, and
	// calls FinishLoop once the answer went out or failed.
	AdmitLoop(ex *Exchange) (addr string, u *Upstream, ok bool)
	WriteLoopHead(w *bufio.Writer, ex *Exchange)
	// FinishLoop ends an admitted exchange as ServeRelay ends one after
	// Relay: res and err are Relay's; an error before the answer started
	// is the handler's to answer (ex.ResponseWriter), or, returning false,
	// to hand to the Fallback with the connection and the note ex.HandOff
	// left (as ServeRelay returning false does). It may run on the loop or
	// on a goroutine, and must not block.
	FinishLoop(ex *Exchange, res Response, err error) bool
}

// Loop commands, which Server methods send through the loop's eventfd.
const (
	cmdStopAccept uint32 = 1 << iota
	cmdCloseIdle
	cmdCut
	cmdClose
	cmdExit
	cmdAdopt
)

// loopTick is how often a loop checks its deadlines (idle connections,
// heads read too slowly, exchanges past their timeout).
const loopTick = 250 * time.Millisecond

// eventLoop serves the connections it accepted, on one OS thread.
type eventLoop struct {
	s    *Server
	h    LoopHandler
	epfd int
	wake int // eventfd: commands are waiting
	lfd  int // the listener's descriptor; -1 once it stopped accepting
	fds  map[int32]fdOwner
	pool upstreamPool

	cmds   atomic.Uint32
	wakeMu sync.Mutex // orders send's write with closing wake

	adoptMu    sync.Mutex
	adoptQueue []adoption // connections given back by net/http (Server.adopt)
	adoptShut  bool       // the loop has closed: adopt closes what it is given

	stopped  chan struct{} // closed once the loop stopped accepting
	exited   chan struct{}
	stopOnce sync.Once

	// Scratch for one exchange at a time: the relayer and handler write
	// the client's bytes through w into the connection's out, and the
	// request's through reqW into its req; ans reads the answer from memory.
	w, reqW *bufio.Writer
	sink    appendSink
	reqSink appendSink
	ans     *bufio.Reader
	mem     memReader
	events  []syscall.EpollEvent
}

// fdOwner is what a descriptor of the loop is: a client connection (up
// nil), the upstream of its exchange (both set) or an idle upstream (lc nil).
type fdOwner struct {
	lc *loopConn
	up *upConn
}

var loopEpoch = time.Now()

// monotime is the loop's clock: nanoseconds since the process started.
func monotime() int64 { return int64(time.Since(loopEpoch)) }

func newEventLoop(s *Server, h LoopHandler, lfd int) (*eventLoop, error) {
	l := &eventLoop{s: s, h: h, epfd: -1, wake: -1, lfd: lfd, fds: map[int32]fdOwner{},
		stopped: make(chan struct{}), exited: make(chan struct{}), events: make([]syscall.EpollEvent, 128)}
	l.pool.init()
	var err error
	if l.epfd, err = syscall.EpollCreate1(syscall.EPOLL_CLOEXEC); err != nil {
		return nil, fmt.Errorf("epoll_create: %w", err)
	}
	const efdCloexec, efdNonblock = 0x80000, 0x800
	fd, _, errno := syscall.RawSyscall(syscall.SYS_EVENTFD2, 0, efdCloexec|efdNonblock, 0)
	if errno != 0 {
		_ = syscall.Close(l.epfd)
		return nil, fmt.Errorf("eventfd: %w", errno)
	}
	l.wake = int(fd)
	// EPOLLEXCLUSIVE: a connection wakes one of the loops sharing the listener.
	const epollExclusive = 1 << 28
	if err := errors.Join(l.ctl(syscall.EPOLL_CTL_ADD, l.wake, syscall.EPOLLIN),
		l.ctl(syscall.EPOLL_CTL_ADD, lfd, syscall.EPOLLIN|epollExclusive)); err != nil {
		l.closeAll()
		return nil, err
	}
	l.w = bufio.NewWriterSize(&l.sink, writeBufferSize)
	l.reqW = bufio.NewWriterSize(&l.reqSink, writeBufferSize)
	l.ans = bufio.NewReaderSize(&l.mem, readBufferSize)
	return l, nil
}

func (l *eventLoop) ctl(op, fd int, events uint32) error {
	ev := syscall.EpollEvent{Events: events, Fd: int32(fd)}
	if err := syscall.EpollCtl(l.epfd, op, fd, &ev); err != nil {
		return fmt.Errorf("epoll_ctl: %w", err)
	}
	return nil
}

// send asks the loop to carry out cmd; a loop that has exited ignores it.
func (l *eventLoop) send(cmd uint32) {
	l.cmds.Or(cmd)
	one := [8]byte{1}
	l.wakeMu.Lock()
	defer l.wakeMu.Unlock()
	if l.wake >= 0 { // not closed: the number may be another file's by now
		_, _ = syscall.Write(l.wake, one[:])
	}
}

// run serves until cmdExit or cmdClose; it closes what it owns when it returns.
func (l *eventLoop) run() {
	runtime.LockOSThread()
	defer close(l.exited)
	defer l.closeAll()
	next := monotime() + int64(loopTick)
	for {
		wait := int(loopTick / time.Millisecond)
		if len(l.fds) == 0 {
			wait = -1 // nothing to time out: sleep until a connection or a command
		}
		n, err := syscall.EpollWait(l.epfd, l.events, wait)
		if err != nil && err != syscall.EINTR {
			panic(fmt.Sprintf("h1relay: epoll_wait: %v", err)) // EBADF or EINVAL: a bug
		}
		for _, ev := range l.events[:max(n, 0)] {
			fd := ev.Fd
			switch {
			case int(fd) == l.wake:
				if !l.commands() {
					return
				}
			case int(fd) == l.lfd:
				l.accept()
			default:
				l.event(fd, ev.Events)
			}
		}
		if now := monotime(); now >= next {
			next = now + int64(loopTick)
			l.expire(now)
		}
	}
}

// commands carries out what Server methods asked; false ends the loop.
func (l *eventLoop) commands() bool {
	var b [8]byte
	_, _ = syscall.Read(l.wake, b[:])
	cmds := l.cmds.Swap(0)
	if cmds&(cmdStopAccept|cmdClose|cmdExit) != 0 {
		l.stopAccepting()
	}
	if cmds&(cmdCut|cmdClose) != 0 {
		for _, lc := range l.conns() {
			if lc.phase == phaseExchange {
				l.cut(lc)
			}
		}
	}
	if cmds&cmdAdopt != 0 {
		l.adoptQueued()
	}
	if cmds&cmdClose != 0 {
		for _, lc := range l.conns() {
			l.closeConn(lc)
		}
		return false
	}
	if cmds&cmdCloseIdle != 0 {
		now := monotime()
		for _, lc := range l.conns() {
			if lc.idle() && (lc.served || now-lc.accepted > int64(newConnGrace)) {
				l.closeConn(lc)
			}
		}
	}
	return cmds&cmdExit == 0
}

// conns is a snapshot of the client connections (commands close some).
func (l *eventLoop) conns() []*loopConn {
	var all []*loopConn
	for fd, o := range l.fds {
		if o.up == nil && o.lc != nil && o.lc.fd == int(fd) {
			all = append(all, o.lc)
		}
	}
	return all
}

func (l *eventLoop) stopAccepting() {
	l.stopOnce.Do(func() {
		if l.lfd >= 0 {
			_ = l.ctl(syscall.EPOLL_CTL_DEL, l.lfd, 0)
			l.lfd = -1
		}
		close(l.stopped)
	})
}

// accept takes the pending connections, as many as the kernel hands this loop.
func (l *eventLoop) accept() {
	for range 64 {
		fd, sa, err := syscall.Accept4(l.lfd, syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC)
		if err != nil {
			return // EAGAIN: another loop took it; anything else: the next event retries
		}
		if l.s.closing.Load() {
			_ = syscall.Close(fd)
			continue
		}
		// What Go's listener does for the connections it accepts.
		_ = syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
		_ = syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_KEEPALIVE, 1)
		_ = syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE, 15)
		_ = syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_KEEPINTVL, 15)
		lc := newLoopConn(l, fd, remoteIP(sa))
		if err := l.ctl(syscall.EPOLL_CTL_ADD, fd, syscall.EPOLLIN); err != nil {
			_ = syscall.Close(fd)
			continue
		}
		l.fds[int32(fd)] = fdOwner{lc: lc}
		l.s.loopConns.Add(1)
		if l.s.OnAccept != nil {
			l.s.OnAccept()
		}
	}
}

func remoteIP(sa syscall.Sockaddr) string {
	switch a := sa.(type) {
	case *syscall.SockaddrInet4:
		return net.IP(a.Addr[:]).String()
	case *syscall.SockaddrInet6:
		return net.IP(a.Addr[:]).String()
	}
	return ""
}

// event dispatches what epoll reported for fd.
func (l *eventLoop) event(fd int32, events uint32) {
	o, ok := l.fds[fd]
	switch {
	case !ok:
	case o.lc == nil: // an idle upstream spoke or closed: it cannot serve again
		l.pool.remove(o.up)
		l.forget(o.up.fd)
	case o.up == nil:
		if events&syscall.EPOLLOUT != 0 {
			l.flush(o.lc)
		}
		if events&(syscall.EPOLLIN|syscall.EPOLLHUP|syscall.EPOLLERR) != 0 && l.fds[fd].lc == o.lc {
			l.clientReadable(o.lc, events&(syscall.EPOLLHUP|syscall.EPOLLERR) != 0)
		}
	default:
		// While connecting, an event is the connect's outcome (or one left
		// in the batch for an earlier socket with the same number): a
		// refusal must fail as a dial, as the agent never saw the request,
		// and never as a read ("read: connection refused").
		if o.up.connecting || events&syscall.EPOLLOUT != 0 {
			l.upstreamWritable(o.lc)
		}
		if events&(syscall.EPOLLIN|syscall.EPOLLHUP|syscall.EPOLLERR) != 0 && o.lc.up == o.up && !o.up.connecting {
			l.upstreamReadable(o.lc)
		}
	}
}

// forget closes fd, which the loop watched.
func (l *eventLoop) forget(fd int) {
	_ = l.ctl(syscall.EPOLL_CTL_DEL, fd, 0)
	delete(l.fds, int32(fd))
	_ = syscall.Close(fd)
}

// expire ends the waits past their deadline.
func (l *eventLoop) expire(now int64) {
	for _, lc := range l.conns() {
		if up := lc.up; up != nil && up.connecting && up.connectBy != 0 && now >= up.connectBy {
			// As a dialer's timeout: the handler may try another upstream.
			l.dropUpstream(lc)
			l.writeTo(lc)
			l.finish(lc, Response{}, dialError(lc.addr, "connect", syscall.ETIMEDOUT))
			continue
		}
		if lc.deadline == 0 || now < lc.deadline {
			continue
		}
		if lc.phase == phaseExchange {
			l.cut(lc)
		} else {
			l.closeConn(lc) // an idle connection, or a head that came too slowly
		}
	}
	l.pool.expire(now, l)
}

func (l *eventLoop) closeAll() {
	for _, lc := range l.conns() {
		l.closeConn(lc)
	}
	for _, o := range l.fds {
		if o.lc == nil && o.up != nil {
			_ = syscall.Close(o.up.fd)
		}
	}
	clear(l.fds)
	l.adoptMu.Lock()
	for _, a := range l.adoptQueue {
		_ = syscall.Close(a.fd)
		l.s.loopConns.Add(-1)
	}
	l.adoptQueue, l.adoptShut = nil, true
	l.adoptMu.Unlock()
	l.stopAccepting()
	l.wakeMu.Lock()
	if l.wake >= 0 {
		_ = syscall.Close(l.wake)
		l.wake = -1
	}
	l.wakeMu.Unlock()
	if l.epfd >= 0 {
		_ = syscall.Close(l.epfd)
	}
}

// appendSink appends what a bufio.Writer flushes to a byte slice.
type appendSink struct{ b *[]byte }

func (a *appendSink) Write(p []byte) (int, error) {
	*a.b = append(*a.b, p...)
	return len(p), nil
}

// memReader is an answer read so far, and what reading past it meets: the
// error the upstream connection ended with, or errIncomplete while it is open.
type memReader struct {
	b   []byte
	end error
}

func (m *memReader) Read(p []byte) (int, error) {
	if len(m.b) == 0 {
		return 0, m.end
	}
	n := copy(p, m.b)
	m.b = m.b[n:]
	return n, nil
}

// errIncomplete is reading past the bytes of an answer that has more to come.
var errIncomplete = errors.New("answer not complete yet")
