package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"runtime"
	"syscall"
	"unsafe"
)

// The "Go epoll relay" path: the floor of a Go HTTP/1.1 relay that does not
// go through Go's netpoller. Each of its loops owns an epoll set, a
// SO_REUSEPORT listener and its connections, and reads a socket only when
// epoll (level-triggered) says it has bytes, as nginx does; a goroutine-per-
// connection relay instead tries every read first (EAGAIN when the next
// request or the agent's answer is not there yet) and parks through the
// scheduler. It is a measuring stick, not a proxy: one agent connection per
// client connection, GET heads only, answers framed by Content-Length,
// anything else closes the pair. Like nginx (getsockopt) and the sidecar
// (MSG_PEEK) it checks the agent connection before each request, so it makes
// their system calls.

// relayPair is a client connection and the agent connection serving it.
type relayPair struct {
	client, agent int
	in, out       []byte // the client's unsent bytes, the agent's unsent answer
	inN, outN     int
	waiting       bool // a request is at the agent
}

// eventLoop relays the connections one listener accepts, on one OS thread.
type eventLoop struct {
	epfd, listener, stop int
	agent                syscall.SockaddrInet4
	pairs                map[int]*relayPair // by both of their descriptors
}

// serveEventLoop relays listen to upstream with n loops until it fails.
func serveEventLoop(listen, upstream string, n int) error {
	loops := make([]*eventLoop, n)
	for i := range loops {
		l, err := newEventLoop(listen, upstream, -1)
		if err != nil {
			return err
		}
		loops[i] = l
	}
	errs := make(chan error, n)
	for _, l := range loops {
		go func() { errs <- l.run() }()
	}
	return <-errs
}

// newEventLoop listens on listen (SO_REUSEPORT, so several loops share the
// address); a readable stop descriptor (-1 for none) ends run.
func newEventLoop(listen, upstream string, stop int) (*eventLoop, error) {
	la, err := inet4(listen)
	if err != nil {
		return nil, err
	}
	ua, err := inet4(upstream)
	if err != nil {
		return nil, err
	}
	lfd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("socket: %w", err)
	}
	l := &eventLoop{listener: lfd, stop: stop, agent: ua, pairs: map[int]*relayPair{}, epfd: -1}
	const soReusePort = 0xf
	if err := errors.Join(
		syscall.SetsockoptInt(lfd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1),
		syscall.SetsockoptInt(lfd, syscall.SOL_SOCKET, soReusePort, 1),
		syscall.Bind(lfd, &la),
		syscall.Listen(lfd, 1024)); err != nil {
		l.close()
		return nil, fmt.Errorf("listen on %s: %w", listen, err)
	}
	if l.epfd, err = syscall.EpollCreate1(syscall.EPOLL_CLOEXEC); err != nil {
		l.close()
		return nil, fmt.Errorf("epoll: %w", err)
	}
	for _, fd := range []int{lfd, stop} {
		if fd >= 0 {
			if err := l.watch(fd); err != nil {
				l.close()
				return nil, err
			}
		}
	}
	return l, nil
}

func inet4(hostPort string) (syscall.SockaddrInet4, error) {
	a, err := net.ResolveTCPAddr("tcp4", hostPort)
	if err != nil || a.IP.To4() == nil {
		return syscall.SockaddrInet4{}, fmt.Errorf("%q is not an IPv4 address and port", hostPort)
	}
	sa := syscall.SockaddrInet4{Port: a.Port}
	copy(sa.Addr[:], a.IP.To4())
	return sa, nil
}

func (l *eventLoop) watch(fd int) error {
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(fd)}
	if err := syscall.EpollCtl(l.epfd, syscall.EPOLL_CTL_ADD, fd, &ev); err != nil {
		return fmt.Errorf("epoll_ctl: %w", err)
	}
	return nil
}

// run serves until the stop descriptor is readable; it closes everything
// it owns when it returns.
func (l *eventLoop) run() error {
	runtime.LockOSThread()
	defer l.close()
	events := make([]syscall.EpollEvent, 128)
	for {
		n, err := syscall.EpollWait(l.epfd, events, -1)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("epoll_wait: %w", err)
		}
		for _, ev := range events[:n] {
			switch fd := int(ev.Fd); fd {
			case l.stop:
				return nil
			case l.listener:
				l.accept()
			default:
				if p := l.pairs[fd]; p != nil && !l.readable(p, fd) {
					l.drop(p)
				}
			}
		}
	}
}

// accept takes every pending connection and dials the agent for each.
func (l *eventLoop) accept() {
	for {
		c, _, err := syscall.Accept4(l.listener, syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC)
		if err != nil {
			return
		}
		a, err := l.dial()
		if err != nil {
			syscall.Close(c)
			continue
		}
		_ = syscall.SetsockoptInt(c, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
		p := &relayPair{client: c, agent: a, in: make([]byte, 16<<10), out: make([]byte, 64<<10)}
		l.pairs[c], l.pairs[a] = p, p
		if l.watch(c) != nil || l.watch(a) != nil {
			l.drop(p)
		}
	}
}

// dial connects to the agent; a blocking connect keeps the loop simple and
// costs nothing measured (connections are made in the warm-up).
func (l *eventLoop) dial() (int, error) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	if err := errors.Join(syscall.Connect(fd, &l.agent), syscall.SetNonblock(fd, true),
		syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)); err != nil {
		syscall.Close(fd)
		return -1, err
	}
	return fd, nil
}

// readable reads what fd has and moves the exchange on; false closes the pair.
func (l *eventLoop) readable(p *relayPair, fd int) bool {
	if fd == p.client {
		n, ok := rawRead(fd, p.in[p.inN:])
		p.inN += n
		return ok && p.sendRequest()
	}
	n, ok := rawRead(fd, p.out[p.outN:])
	p.outN += n
	return ok && p.sendAnswer()
}

var headEnd = []byte("\r\n\r\n")

// sendRequest sends the first whole request head to the agent, unless one
// is there already.
func (p *relayPair) sendRequest() bool {
	end := bytes.Index(p.in[:p.inN], headEnd)
	if p.waiting || end < 0 {
		return p.inN < len(p.in) // a head that fills the buffer is refused
	}
	n := end + 4
	if !agentIdle(p.agent) || !rawWriteAll(p.agent, p.in[:n]) {
		return false
	}
	p.inN = copy(p.in, p.in[n:p.inN])
	p.waiting = true
	return true
}

// sendAnswer sends a whole answer to the client, then the next request.
func (p *relayPair) sendAnswer() bool {
	end := bytes.Index(p.out[:p.outN], headEnd)
	if end < 0 {
		return p.outN < len(p.out)
	}
	length, ok := contentLength(p.out[:end+2])
	if !ok || !p.waiting {
		return false
	}
	n := end + 4 + length
	if n > len(p.out) {
		return false
	}
	if p.outN < n {
		return true
	}
	if !rawWriteAll(p.client, p.out[:n]) {
		return false
	}
	p.outN = copy(p.out, p.out[n:p.outN])
	p.waiting = false
	return p.outN == 0 && p.sendRequest() // bytes after an answer: the agent is broken
}

// contentLength finds the Content-Length of an answer head.
func contentLength(head []byte) (int, bool) {
	for len(head) > 0 {
		line, rest, _ := bytes.Cut(head, []byte("\r\n"))
		head = rest
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok || !bytes.EqualFold(name, []byte("Content-Length")) {
			continue
		}
		value = bytes.TrimSpace(value)
		n := 0
		for _, c := range value {
			if c < '0' || c > '9' || n > 1<<30 {
				return 0, false
			}
			n = n*10 + int(c-'0')
		}
		return n, len(value) > 0
	}
	return 0, false
}

func (l *eventLoop) drop(p *relayPair) {
	delete(l.pairs, p.client)
	delete(l.pairs, p.agent)
	syscall.Close(p.client)
	syscall.Close(p.agent)
}

func (l *eventLoop) close() {
	for _, p := range l.pairs {
		l.drop(p)
	}
	syscall.Close(l.listener)
	if l.epfd >= 0 {
		syscall.Close(l.epfd)
	}
}

// Reads and writes are raw system calls: non-blocking sockets never block,
// so the runtime need not hand the thread's P over.

func rawRead(fd int, p []byte) (int, bool) {
	if len(p) == 0 {
		return 0, true
	}
	n, _, errno := syscall.RawSyscall(syscall.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	switch {
	case errno == syscall.EAGAIN:
		return 0, true
	case errno != 0 || n == 0:
		return 0, false // an error or the peer closed
	}
	return int(n), true
}

// rawWriteAll writes p whole; a socket buffer too full to take a small
// answer at once closes the pair, which this measuring stick never sees.
func rawWriteAll(fd int, p []byte) bool {
	n, _, errno := syscall.RawSyscall(syscall.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	return errno == 0 && int(n) == len(p)
}

// agentIdle is the check before each request: the agent connection has
// neither closed nor sent unasked bytes that the loop has not seen yet (it
// watches the agent connection between requests too, and drops a pair whose
// agent speaks unasked).
func agentIdle(fd int) bool {
	var b [1]byte
	_, _, errno := syscall.RawSyscall6(syscall.SYS_RECVFROM, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), 1,
		syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
	return errno == syscall.EAGAIN
}
