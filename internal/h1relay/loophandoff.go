package h1relay

import (
	"bufio"
	"bytes"
	"net"
	"os"
	"syscall"
	"time"
)

// What an answer read so far is to a loop.
const (
	answerPartialHead = iota // its head is not all there yet
	answerPartialBody        // its head is, and its body of known length not yet
	answerWhole              // it is all there, for the loop to relay from memory
	answerStreams            // a goroutine relays it as it comes
)

// answerState tells what the answer b is. An answer streams when it has
// interim answers, is chunked, lasts until the upstream closes or is
// longer than maxLoopAnswer. A head it cannot read counts as whole: the
// relayer then refuses it as the goroutine path does.
func answerState(b []byte, isHead bool) int {
	end := bytes.Index(b, headEnd)
	if end < 0 {
		return answerPartialHead
	}
	line, fields, _ := bytes.Cut(b[:end+2], []byte("\r\n"))
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return answerWhole
	}
	code, ok := parseLength(line[9:12])
	switch {
	case !ok:
		return answerWhole
	case code < 200:
		return answerStreams
	}
	length := int64(-1)
	for len(fields) > 0 {
		var f []byte
		f, fields, _ = bytes.Cut(fields, []byte("\r\n"))
		name, value, ok := bytes.Cut(f, []byte(":"))
		switch {
		case !ok:
		case equalFold(name, "Transfer-Encoding") && !isHead:
			return answerStreams
		case length < 0 && equalFold(name, "Content-Length"):
			if n, ok := parseLength(trimOWS(value)); ok {
				length = n
			}
		}
	}
	if isHead || code == 204 || code == 304 {
		length = 0
	}
	switch total := int64(end+4) + length; {
	case length < 0 || total > maxLoopAnswer:
		return answerStreams
	case int64(len(b)) < total:
		return answerPartialBody
	}
	return answerWhole
}

// fdConn makes a net.Conn, on Go's netpoller, of a socket the loop owned;
// fd itself is closed.
func fdConn(fd int) (net.Conn, error) {
	f := os.NewFile(uintptr(fd), "")
	defer f.Close()
	return net.FileConn(f)
}

// takeOff takes fd off the loop, as a net.Conn on Go's netpoller.
func (l *eventLoop) takeOff(fd int) (net.Conn, error) {
	_ = l.ctl(syscall.EPOLL_CTL_DEL, fd, 0)
	delete(l.fds, int32(fd))
	return fdConn(fd)
}

// handOffConn gives the connection, its request not started, to a
// goroutine, which serves it as a connection the relay accepted: the
// handler's ServeRelay, or net/http.
func (l *eventLoop) handOffConn(lc *loopConn) {
	defer l.s.loopConns.Add(-1)
	nc, err := l.takeOff(lc.fd)
	if err != nil {
		return
	}
	var conn net.Conn = nc
	if lc.n > 0 {
		conn = &prefixConn{Conn: nc, pending: bytes.Clone(lc.in[:lc.n])}
	}
	c := &clientConn{s: l.s, nc: conn, accepted: time.Now()}
	if !l.s.track(c, true) {
		_ = nc.Close()
		return
	}
	go c.serve()
}

// handOffExchange gives an exchange whose answer streams, and its client
// connection after it, to a goroutine.
func (l *eventLoop) handOffExchange(lc *loopConn) {
	defer l.s.loopConns.Add(-1)
	ex := &lc.c.ex
	up := lc.up
	lc.up = nil
	cnc, err := l.takeOff(lc.fd)
	unc, uerr := l.takeOff(up.fd)
	if err != nil || uerr != nil {
		for _, nc := range []net.Conn{cnc, unc} {
			if nc != nil {
				_ = nc.Close()
			}
		}
		ex.close = true
		l.writeTo(lc)
		l.h.FinishLoop(ex, Response{Reused: up.reused, Started: true}, ErrClientGone)
		return
	}
	c := &lc.c
	// The request's own bytes stay in front: the handler may yet hand it
	// to the Fallback (FinishLoop returning false).
	c.nc = &prefixConn{Conn: cnc, pending: bytes.Clone(lc.in[:lc.n])}
	c.br = bufio.NewReaderSize(c.nc, readBufferSize)
	c.bw = bufio.NewWriterSize(cnc, writeBufferSize)
	c.accepted = time.Now()
	c.s.trackAlways(c)
	go c.finishExchange(l.h, lc.u, unc, lc.answer, loopDeadline(lc.deadline), up.reused)
}

// finishExchange relays the rest of an answer a loop began to read, ends
// the exchange and serves the connection's next requests.
func (c *clientConn) finishExchange(h LoopHandler, u *Upstream, up net.Conn, answer []byte, deadline time.Time, reused bool) {
	ex := &c.ex
	_ = up.SetDeadline(deadline)
	c.setUpstream(up)
	res, err := c.relayWatched(bufio.NewReaderSize(&prefixConn{Conn: up, pending: answer}, readBufferSize), u)
	c.setUpstream(nil)
	_ = up.Close() // streams are few: the loop's pool keeps the plain ones
	res.Reused = reused
	if !h.FinishLoop(ex, res, err) && !res.Started {
		if !c.handOff(ex.note, false) {
			_ = c.nc.Close()
		}
		c.s.track(c, false)
		return
	}
	if _, derr := c.br.Discard(ex.consumed); derr != nil || c.bw.Flush() != nil || ex.Closing() {
		c.s.track(c, false)
		_ = c.nc.Close()
		return
	}
	c.serveFrom(false)
}

// handOffToFallback gives the connection, its request first, to the
// Fallback with the note the handler left.
func (l *eventLoop) handOffToFallback(lc *loopConn) {
	defer l.s.loopConns.Add(-1)
	nc, err := l.takeOff(lc.fd)
	if err != nil {
		return
	}
	pc := &prefixConn{Conn: nc, pending: bytes.Clone(lc.in[:lc.n]), note: lc.c.ex.note}
	go func() {
		if !l.s.handoff.give(pc) {
			_ = nc.Close()
		}
	}()
}

// adopt gives a connection net/http served back to a loop (take-back, with
// the bytes read past its request), as the goroutine path takes it back;
// false: there are no loops, or the connection is not a TCP one.
func (s *Server) adopt(nc net.Conn, pending []byte) bool {
	s.mu.Lock()
	loops := s.loops
	s.mu.Unlock()
	tc, ok := nc.(*net.TCPConn)
	if len(loops) == 0 || !ok || len(pending) > readBufferSize {
		return false
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return false
	}
	fd := -1
	_ = raw.Control(func(sfd uintptr) {
		// A descriptor of the loop's own (close-on-exec, as Go's); closing
		// nc then leaves the socket open.
		r, _, errno := syscall.RawSyscall(syscall.SYS_FCNTL, sfd, syscall.F_DUPFD_CLOEXEC, 0)
		if errno == 0 {
			fd = int(r)
		}
	})
	if fd < 0 {
		return false
	}
	ip := ""
	if a, ok := nc.RemoteAddr().(*net.TCPAddr); ok {
		ip = a.IP.String()
	}
	_ = nc.Close()
	s.loopConns.Add(1) // counted from here, for Shutdown
	l := loops[s.adopted.Add(1)%uint32(len(loops))]
	l.adoptMu.Lock()
	defer l.adoptMu.Unlock()
	if l.adoptShut { // the loop has ended: so has serving
		_ = syscall.Close(fd)
		s.loopConns.Add(-1)
		return true
	}
	l.adoptQueue = append(l.adoptQueue, adoption{fd: fd, ip: ip, pending: pending})
	l.send(cmdAdopt)
	return true
}

// adoption is a connection waiting for a loop to take it.
type adoption struct {
	fd      int
	ip      string
	pending []byte
}

// adoptQueued serves the connections adopt gave this loop.
func (l *eventLoop) adoptQueued() {
	l.adoptMu.Lock()
	queue := l.adoptQueue
	l.adoptQueue = nil
	l.adoptMu.Unlock()
	for _, a := range queue {
		lc := newLoopConn(l, a.fd, a.ip)
		lc.served = true
		lc.n = copy(lc.in, a.pending)
		if l.lfd < 0 && l.s.closing.Load() && lc.n == 0 {
			_ = syscall.Close(a.fd) // shutting down, between requests
			l.s.loopConns.Add(-1)
			continue
		}
		if err := l.ctl(syscall.EPOLL_CTL_ADD, a.fd, syscall.EPOLLIN); err != nil {
			_ = syscall.Close(a.fd)
			l.s.loopConns.Add(-1)
			continue
		}
		l.fds[int32(a.fd)] = fdOwner{lc: lc}
		if lc.n > 0 {
			l.serve(lc)
		}
	}
}
