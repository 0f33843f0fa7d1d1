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

// detach takes fd off the loop without closing it.
func (l *eventLoop) detach(fd int) {
	_ = l.ctl(syscall.EPOLL_CTL_DEL, fd, 0)
	delete(l.fds, int32(fd))
}

// handOffConn gives the connection, its request not started, to a
// goroutine, which serves it as a connection the relay accepted: the
// handler's ServeRelay, or net/http.
func (l *eventLoop) handOffConn(lc *loopConn) {
	defer l.s.loopConns.Add(-1)
	l.detach(lc.fd)
	nc, err := fdConn(lc.fd)
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
	l.detach(lc.fd)
	l.detach(up.fd)
	lc.up = nil
	cnc, err := fdConn(lc.fd)
	unc, uerr := fdConn(up.fd)
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
	c.nc = cnc
	var in net.Conn = cnc
	if rest := lc.in[ex.consumed:lc.n]; len(rest) > 0 {
		in = &prefixConn{Conn: cnc, pending: bytes.Clone(rest)}
	}
	c.br = bufio.NewReaderSize(in, readBufferSize)
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
	c.watch.start(c, nil)
	c.rl.drop, c.rl.refused = u.DropResponse, u.Refused
	ubr := bufio.NewReaderSize(&prefixConn{Conn: up, pending: answer}, readBufferSize)
	res, err := c.rl.relay(ubr, c.bw, ex.Head.IsHead(), ex.closingNow)
	if c.watch.stop(c) {
		err = ErrClientGone
	}
	c.setUpstream(nil)
	_ = up.Close() // streams are few: the loop's pool keeps the plain ones
	if err == errStreamCut {
		err, res.Reusable = nil, false
	}
	if err != nil && res.Started {
		ex.close = true
	}
	res.Reused = reused
	h.FinishLoop(ex, res, err)
	if c.bw.Flush() != nil || ex.Closing() {
		c.s.track(c, false)
		_ = c.nc.Close()
		return
	}
	c.serveFrom(false)
}
