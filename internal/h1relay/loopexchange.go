package h1relay

import (
	"errors"
	"io"
	"os"
	"syscall"
)

// A loop's side of an exchange upstream: the request out on a pooled or
// new connection, the answer in, and its relaying from memory.

// sendRequest sends the request on a connection of the pool, or a new one.
func (l *eventLoop) sendRequest(lc *loopConn) {
	up, err := l.pool.get(lc.addr, l)
	if err != nil {
		l.writeTo(lc)
		l.finish(lc, Response{}, err)
		return
	}
	lc.up, lc.reqSent, lc.answer = up, 0, lc.answer[:0]
	l.fds[int32(up.fd)] = fdOwner{lc: lc, up: up}
	if !up.connecting {
		l.upstreamWritable(lc)
	} else if lc.u.DialTimeout > 0 {
		up.connectBy = monotime() + int64(lc.u.DialTimeout)
	}
}

// upstreamWritable connects, then writes what is left of the request.
func (l *eventLoop) upstreamWritable(lc *loopConn) {
	up := lc.up
	if up.connecting {
		errno, err := syscall.GetsockoptInt(up.fd, syscall.SOL_SOCKET, syscall.SO_ERROR)
		if err == nil && errno != 0 {
			err = syscall.Errno(errno)
		}
		if err == nil {
			if _, perr := syscall.Getpeername(up.fd); perr == syscall.ENOTCONN {
				// Still connecting: an event left in the batch for an
				// earlier socket that had the same number.
				return
			}
		}
		if err != nil {
			l.dropUpstream(lc)
			l.writeTo(lc)
			l.finish(lc, Response{}, dialError(lc.addr, "connect", err))
			return
		}
		up.connecting = false
	}
	for lc.reqSent < len(lc.req) {
		n, errno := rawWrite(up.fd, lc.req[lc.reqSent:])
		if errno == syscall.EAGAIN {
			if !up.wantOut {
				up.wantOut = true
				_ = l.ctl(syscall.EPOLL_CTL_MOD, up.fd, syscall.EPOLLIN|syscall.EPOLLOUT)
			}
			return
		}
		if errno != 0 {
			// The request did not go: as a failed flush on the goroutine
			// path, the upstream gave no answer (a reused connection it
			// had closed, most likely).
			l.answerEnded(lc, noAnswer(&os.SyscallError{Syscall: "write", Err: errno}))
			return
		}
		lc.reqSent += n
	}
	if up.wantOut {
		up.wantOut = false
		_ = l.ctl(syscall.EPOLL_CTL_MOD, up.fd, syscall.EPOLLIN)
	}
}

// upstreamReadable reads the answer, and relays it once it is complete.
func (l *eventLoop) upstreamReadable(lc *loopConn) {
	for {
		if len(lc.answer) == cap(lc.answer) {
			grow := max(4<<10, min(cap(lc.answer), maxLoopAnswer-cap(lc.answer)))
			lc.answer = append(lc.answer, make([]byte, grow)...)[:len(lc.answer)]
		}
		n, errno := rawRead(lc.up.fd, lc.answer[len(lc.answer):cap(lc.answer)])
		switch {
		case errno == syscall.EAGAIN:
			if answerState(lc.answer, lc.c.ex.Head.IsHead()) == answerPartialBody {
				// The body comes slower than the upstream's socket: a
				// goroutine passes it on as it comes, as without loops.
				l.handOffExchange(lc)
			}
			return
		case n == 0 && errno == 0:
			l.answerEnded(lc, io.EOF)
			return
		case errno != 0:
			l.answerEnded(lc, &os.SyscallError{Syscall: "read", Err: errno})
			return
		}
		lc.answer = lc.answer[:len(lc.answer)+n]
		switch answerState(lc.answer, lc.c.ex.Head.IsHead()) {
		case answerStreams:
			l.handOffExchange(lc)
			return
		case answerWhole:
			l.relayAnswer(lc, errIncomplete)
			return
		}
		if len(lc.answer) == maxLoopAnswer {
			l.handOffExchange(lc) // a head this long is the goroutine's to read
			return
		}
	}
}

// answerEnded relays what the upstream sent before its connection ended
// with err (a deadline for a timeout or a cut), as a goroutine reading it
// would have.
func (l *eventLoop) answerEnded(lc *loopConn, err error) {
	l.dropUpstream(lc)
	l.relayAnswer(lc, err)
}

// cut ends the exchange in progress as its upstream timing out does.
func (l *eventLoop) cut(lc *loopConn) {
	if lc.up != nil {
		l.answerEnded(lc, os.ErrDeadlineExceeded)
	}
}

// relayAnswer relays the answer read so far with the relayer goroutines
// use, its upstream connection having ended with end (errIncomplete:
// still open); then the exchange ends.
func (l *eventLoop) relayAnswer(lc *loopConn, end error) {
	ex := &lc.c.ex
	up := lc.up
	l.mem = memReader{b: lc.answer, end: end}
	l.ans.Reset(&l.mem)
	l.writeTo(lc)
	mark := len(lc.out)
	rl := &lc.c.rl
	rl.drop, rl.refused = lc.u.DropResponse, lc.u.Refused
	res, err := rl.relay(l.ans, l.w, ex.Head.IsHead(), ex.closingNow)
	if errors.Is(err, errIncomplete) {
		// answerState saw a whole answer that the relayer does not: the
		// goroutine path reads the rest.
		l.w.Reset(&l.sink)
		lc.out = lc.out[:mark]
		l.handOffExchange(lc)
		return
	}
	res, err = ex.settle(res, err)
	res.Reused = lc.upReused
	if up != nil {
		res.Reused = up.reused
		// Reused only when it ended cleanly: the whole request went, and
		// the agent sent nothing after the answer.
		if res.Reusable && (err == nil || err == ErrRefused) && lc.reqSent == len(lc.req) &&
			l.ans.Buffered() == 0 && len(l.mem.b) == 0 {
			delete(l.fds, int32(up.fd))
			lc.up = nil
			l.pool.put(up, l)
		} else {
			l.dropUpstream(lc)
		}
	}
	if ex.Resend(res, err) {
		l.writeTo(lc)
		lc.out = lc.out[:mark]
		l.sendRequest(lc)
		return
	}
	l.finish(lc, res, err)
}

// dropUpstream closes the exchange's upstream connection.
func (l *eventLoop) dropUpstream(lc *loopConn) {
	if up := lc.up; up != nil {
		lc.upReused = up.reused
		l.forget(up.fd)
		lc.up = nil
	}
}
