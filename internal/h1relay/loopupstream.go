package h1relay

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"syscall"
	"time"
	"unsafe"
)

// A loop keeps its own upstream connections: they are its descriptors,
// which Go's netpoller must not watch.
const (
	loopMaxIdle     = 256              // idle connections kept per upstream and loop
	loopIdleTimeout = 90 * time.Second // net/http's default IdleConnTimeout
)

// upConn is an upstream connection of a loop.
type upConn struct {
	fd         int
	addr       string
	reused     bool  // served an earlier request
	connecting bool  // connect not finished yet
	connectBy  int64 // monotime connecting fails (0: the exchange's deadline alone)
	wantOut    bool  // epoll reports it writable
	idleSince  int64
}

// upstreamPool is a loop's idle upstream connections, most recently used last.
type upstreamPool struct {
	idle  map[string][]*upConn
	addrs map[string]syscall.Sockaddr
}

func (p *upstreamPool) init() {
	p.idle = map[string][]*upConn{}
	p.addrs = map[string]syscall.Sockaddr{}
}

// get returns an idle connection to addr that is still open, or dials one.
func (p *upstreamPool) get(addr string, l *eventLoop) (*upConn, error) {
	for list := p.idle[addr]; len(list) > 0; list = p.idle[addr] {
		up := list[len(list)-1]
		p.idle[addr] = list[:len(list)-1]
		if quiet(up.fd) {
			up.reused = true
			return up, nil
		}
		l.forget(up.fd)
	}
	sa, err := p.sockaddr(addr)
	if err != nil {
		return nil, err
	}
	family := syscall.AF_INET
	if _, ok := sa.(*syscall.SockaddrInet6); ok {
		family = syscall.AF_INET6
	}
	fd, err := syscall.Socket(family, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, dialError(addr, "socket", err)
	}
	_ = syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
	up := &upConn{fd: fd, addr: addr}
	switch err := syscall.Connect(fd, sa); err {
	case nil:
	case syscall.EINPROGRESS:
		up.connecting, up.wantOut = true, true
	default:
		_ = syscall.Close(fd)
		return nil, dialError(addr, "connect", err)
	}
	events := uint32(syscall.EPOLLIN)
	if up.wantOut {
		events |= syscall.EPOLLOUT
	}
	if err := l.ctl(syscall.EPOLL_CTL_ADD, fd, events); err != nil {
		_ = syscall.Close(fd)
		return nil, err
	}
	return up, nil
}

// dialError is a failure to connect as net.Dial reports it, which the
// handler tells from other failures (the agent never saw the request).
func dialError(addr, call string, err error) error {
	var a net.Addr
	if ap, perr := netip.ParseAddrPort(addr); perr == nil {
		a = net.TCPAddrFromAddrPort(ap)
	}
	return &net.OpError{Op: "dial", Net: "tcp", Addr: a, Err: &os.SyscallError{Syscall: call, Err: err}}
}

// sockaddr is addr's, which must be an IP address and port: a loop does
// not resolve names, which blocks.
func (p *upstreamPool) sockaddr(addr string) (syscall.Sockaddr, error) {
	if sa, ok := p.addrs[addr]; ok {
		return sa, nil
	}
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return nil, fmt.Errorf("upstream %q: an event loop needs an IP address and port: %w", addr, err)
	}
	var sa syscall.Sockaddr
	if a := ap.Addr().Unmap(); a.Is4() {
		sa = &syscall.SockaddrInet4{Port: int(ap.Port()), Addr: a.As4()}
	} else {
		sa = &syscall.SockaddrInet6{Port: int(ap.Port()), Addr: a.As16()}
	}
	p.addrs[addr] = sa
	return sa, nil
}

// put keeps up for the next request to its upstream; epoll keeps watching
// it, so one the upstream closes meanwhile goes at once.
func (p *upstreamPool) put(up *upConn, l *eventLoop) {
	list := p.idle[up.addr]
	if len(list) >= loopMaxIdle {
		l.forget(up.fd)
		return
	}
	up.idleSince = monotime()
	p.idle[up.addr] = append(list, up)
	l.fds[int32(up.fd)] = fdOwner{up: up}
}

// remove takes up out of the pool; the caller closes it.
func (p *upstreamPool) remove(up *upConn) {
	list := p.idle[up.addr]
	if i := slices.Index(list, up); i >= 0 {
		p.idle[up.addr] = slices.Delete(list, i, i+1)
	}
}

// expire closes the connections idle for longer than loopIdleTimeout.
func (p *upstreamPool) expire(now int64, l *eventLoop) {
	for addr, list := range p.idle {
		n := 0
		for _, up := range list {
			if now-up.idleSince > int64(loopIdleTimeout) {
				l.forget(up.fd)
				continue
			}
			list[n] = up
			n++
		}
		clear(list[n:])
		p.idle[addr] = list[:n]
	}
}

// quiet reports whether an idle connection has neither closed nor sent
// anything since its last answer (the liveness check of forward's pool).
func quiet(fd int) bool {
	var b [1]byte
	_, _, errno := syscall.RawSyscall6(syscall.SYS_RECVFROM, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), 1,
		syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
	return errno == syscall.EAGAIN
}
