package h1relay

import (
	"bytes"
	"syscall"
	"time"
	"unsafe"
)

// A loop connection is in one of three phases.
const (
	phaseRequest  uint8 = iota // waiting for a request, or the rest of one
	phaseExchange              // a request at the upstream
	phaseFlush                 // an answer going out to the client
)

// maxLoopAnswer bounds an answer the loop relays from memory; a longer one
// streams on a goroutine.
const maxLoopAnswer = 64 << 10

// loopConn is a client connection an event loop serves.
type loopConn struct {
	l        *eventLoop
	c        clientConn // the exchange and relayer, as a goroutine's connection has them
	fd       int
	in       []byte // in[:n] read and not served yet
	n        int
	out      []byte // the answer going to the client, from out[outSent:]
	outSent  int
	req      []byte // the request going upstream, from req[reqSent:]
	reqSent  int
	answer   []byte // the answer read so far
	up       *upConn
	addr     string
	u        *Upstream
	phase    uint8
	served   bool  // a request was served: between requests, not new
	closing  bool  // close once out is sent
	readOff  bool  // in is full: the client is not watched for reading
	headWait bool  // deadline is the head's (ReadHeaderTimeout)
	wantOut  bool  // out is waiting for the client to take more
	upReused bool  // the exchange's upstream connection, dropped, had served before
	deadline int64 // monotime the current wait ends; 0: none
	accepted int64
}

func newLoopConn(l *eventLoop, fd int, ip string) *loopConn {
	lc := &loopConn{l: l, fd: fd, in: make([]byte, readBufferSize), accepted: monotime()}
	lc.c.s = l.s
	lc.c.bw = l.w
	lc.c.ex.c = &lc.c
	lc.c.ex.RemoteIP = ip
	if l.s.IdleTimeout > 0 {
		lc.deadline = lc.accepted + int64(l.s.IdleTimeout)
	}
	return lc
}

// idle: between requests, nothing read or to send.
func (lc *loopConn) idle() bool {
	return lc.phase == phaseRequest && lc.n == 0 && lc.outSent == len(lc.out)
}

// clientReadable reads what the client sent: a request to serve, or
// bytes after one in progress (pipelined), or its leaving.
func (l *eventLoop) clientReadable(lc *loopConn, hangup bool) {
	if lc.n == len(lc.in) {
		switch {
		case hangup && lc.phase == phaseExchange:
			l.clientGone(lc) // failed while its answer was awaited
		case hangup:
			l.closeConn(lc)
		default:
			// Pipelined requests fill the buffer: stop reading until they
			// are served (epoll still reports a hang-up or an error).
			lc.readOff = true
			l.watchClient(lc)
		}
		return
	}
	n, errno := rawRead(lc.fd, lc.in[lc.n:])
	switch {
	case errno == syscall.EAGAIN:
		return
	case errno != 0 || n == 0:
		if lc.phase == phaseExchange {
			l.clientGone(lc)
		} else {
			l.closeConn(lc)
		}
		return
	}
	lc.n += n
	if lc.phase == phaseRequest {
		l.serve(lc)
	}
}

// watchClient has epoll report what the connection waits for.
func (l *eventLoop) watchClient(lc *loopConn) {
	var events uint32
	if !lc.readOff {
		events |= syscall.EPOLLIN
	}
	if lc.wantOut {
		events |= syscall.EPOLLOUT
	}
	_ = l.ctl(syscall.EPOLL_CTL_MOD, lc.fd, events)
}

// writeTo points the loop's writer at the connection's answer.
func (l *eventLoop) writeTo(lc *loopConn) {
	l.sink.b = &lc.out
	l.w.Reset(&l.sink)
}

var headEnd = []byte("\r\n\r\n")

// serve starts the exchange of the request at the start of in, once all of
// it is there.
func (l *eventLoop) serve(lc *loopConn) {
	s := l.s
	if lc.n == 0 {
		lc.headWait = false
		lc.deadline = 0
		if s.IdleTimeout > 0 {
			lc.deadline = monotime() + int64(s.IdleTimeout)
		}
		return
	}
	buf := lc.in[:lc.n]
	i := bytes.Index(buf, headEnd)
	if i < 0 {
		if lc.n == len(lc.in) {
			l.handOffConn(lc) // too long for the relay: net/http answers it
		} else if !lc.headWait {
			lc.headWait = true
			lc.deadline = 0
			if s.ReadHeaderTimeout > 0 {
				lc.deadline = monotime() + int64(s.ReadHeaderTimeout)
			}
		}
		return
	}
	headLen := i + 4
	ex := &lc.c.ex
	ex.reset()
	if (s.MaxHeadBytes > 0 && headLen > s.MaxHeadBytes) || !parseHead(buf[:headLen], &ex.Head) || headLen+int(ex.Head.ContentLength) > len(buf) {
		l.handOffConn(lc) // as the goroutine path would
		return
	}
	ex.Body = buf[headLen : headLen+int(ex.Head.ContentLength)]
	ex.consumed = headLen + len(ex.Body)
	ex.closingNow()
	addr, u, ok := l.h.AdmitLoop(ex)
	if !ok {
		l.handOffConn(lc)
		return
	}
	lc.served, lc.headWait = true, false
	lc.addr, lc.u = addr, u
	lc.req = lc.req[:0]
	l.reqSink.b = &lc.req
	l.reqW.Reset(&l.reqSink)
	l.h.WriteLoopHead(l.reqW, ex)
	_, _ = l.reqW.Write(ex.Body)
	_ = l.reqW.Flush()
	lc.deadline = 0
	if u.Timeout > 0 {
		lc.deadline = monotime() + int64(u.Timeout)
	}
	lc.phase = phaseExchange
	l.sendRequest(lc)
}

// finish ends an admitted exchange: the handler's part (and its error
// answer), then the answer goes out.
func (l *eventLoop) finish(lc *loopConn, res Response, err error) {
	ex := &lc.c.ex
	if !l.h.FinishLoop(ex, res, err) && !res.Started {
		l.w.Reset(&l.sink) // nothing of this exchange goes out
		lc.out = lc.out[:0]
		l.handOffToFallback(lc)
		return
	}
	_ = l.w.Flush() // after what relayAnswer wrote
	lc.up = nil
	if cap(lc.answer) > readBufferSize {
		lc.answer = nil
	}
	lc.closing = ex.Closing()
	copy(lc.in, lc.in[ex.consumed:lc.n])
	lc.n -= ex.consumed
	lc.deadline = 0
	lc.phase = phaseFlush
	if lc.readOff {
		lc.readOff = false
		l.watchClient(lc)
	}
	l.flush(lc)
}

// flush writes the answer; once it is out, the next request is served.
func (l *eventLoop) flush(lc *loopConn) {
	for lc.outSent < len(lc.out) {
		n, errno := rawWrite(lc.fd, lc.out[lc.outSent:])
		if errno == syscall.EAGAIN {
			lc.wantOut = true
			l.watchClient(lc)
			return
		}
		if errno != 0 {
			l.closeConn(lc)
			return
		}
		lc.outSent += n
	}
	lc.out, lc.outSent = lc.out[:0], 0
	if cap(lc.out) > readBufferSize {
		lc.out = nil // a large answer's buffer is not kept for the next
	}
	if lc.wantOut {
		lc.wantOut = false
		l.watchClient(lc)
	}
	if lc.phase != phaseFlush {
		return
	}
	if lc.closing {
		l.closeConn(lc)
		return
	}
	lc.phase = phaseRequest
	if s := l.s; s.closing.Load() && lc.n == 0 {
		l.closeConn(lc) // between requests, shutting down: done
		return
	}
	l.serve(lc)
}

// clientGone ends the exchange of a client that left, as the goroutine
// path's watch does.
func (l *eventLoop) clientGone(lc *loopConn) {
	reused := lc.up != nil && lc.up.reused
	l.dropUpstream(lc)
	ex := &lc.c.ex
	ex.close = true
	l.writeTo(lc) // nothing goes out: the connection closes
	l.h.FinishLoop(ex, Response{Reused: reused}, ErrClientGone)
	l.closeConn(lc)
}

// closeConn closes the client connection and its exchange's upstream.
func (l *eventLoop) closeConn(lc *loopConn) {
	if _, ok := l.fds[int32(lc.fd)]; !ok {
		return
	}
	l.dropUpstream(lc)
	l.forget(lc.fd)
	l.s.loopConns.Add(-1)
}

// Reads and writes are raw system calls: a non-blocking socket does not
// block, so the thread keeps its P.

func rawRead(fd int, p []byte) (int, syscall.Errno) {
	if len(p) == 0 {
		return 0, 0
	}
	n, _, errno := syscall.RawSyscall(syscall.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	if errno != 0 {
		return 0, errno
	}
	return int(n), 0
}

func rawWrite(fd int, p []byte) (int, syscall.Errno) {
	n, _, errno := syscall.RawSyscall(syscall.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	if errno != 0 {
		return 0, errno
	}
	return int(n), 0
}

// loopDeadline is the exchange's deadline as a time, for a goroutine that
// takes it over.
func loopDeadline(d int64) time.Time {
	if d == 0 {
		return time.Time{}
	}
	return loopEpoch.Add(time.Duration(d))
}
