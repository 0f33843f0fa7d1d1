package forward

import (
	"context"
	"sync"
	"time"
)

// pool holds one upstream's idle connections, most recently used last:
// taking the newest keeps the working set small and lets the oldest reach
// the idle timeout.
type pool struct {
	t    *Transport
	addr string

	mu    sync.Mutex
	idle  []*conn
	timer *time.Timer // armed while idle holds connections and IdleTimeout > 0
}

// get returns an idle connection that is still open, or dials a new one.
func (p *pool) get(ctx context.Context) (*conn, error) {
	for {
		c := p.pop()
		if c == nil {
			break
		}
		if c.usable() {
			c.reused = true
			return c, nil
		}
		c.close()
	}
	nc, err := p.t.Dial(ctx, "tcp", p.addr)
	if err != nil {
		return nil, err
	}
	return newConn(p, nc), nil
}

func (p *pool) pop() *conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	for n := len(p.idle); n > 0; n = len(p.idle) {
		c := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		if p.t.IdleTimeout <= 0 || time.Since(c.idleAt) < p.t.IdleTimeout {
			return c
		}
		go c.close() // expired; everything older is too, the reaper takes those
	}
	return nil
}

// put keeps c for the next request, or closes it when the pool is full.
func (p *pool) put(c *conn) {
	c.idleAt = time.Now()
	p.mu.Lock()
	max := p.t.MaxIdlePerHost
	if max <= 0 {
		max = 2
	}
	if len(p.idle) >= max {
		p.mu.Unlock()
		c.close()
		return
	}
	p.idle = append(p.idle, c)
	if p.timer == nil && p.t.IdleTimeout > 0 {
		p.timer = time.AfterFunc(p.t.IdleTimeout, p.reap)
	}
	p.mu.Unlock()
}

// reap closes the connections idle for longer than IdleTimeout, before the
// upstream's own keep-alive timeout would close them under a request.
func (p *pool) reap() {
	now := time.Now()
	var expired []*conn
	p.mu.Lock()
	n := 0
	for n < len(p.idle) && now.Sub(p.idle[n].idleAt) >= p.t.IdleTimeout {
		n++
	}
	expired = append(expired, p.idle[:n]...)
	kept := copy(p.idle, p.idle[n:])
	clear(p.idle[kept:])
	p.idle = p.idle[:kept]
	if kept > 0 {
		p.timer.Reset(p.t.IdleTimeout - now.Sub(p.idle[0].idleAt))
	} else {
		p.timer = nil
		// A gateway sees replicas come and go; an empty pool is dropped
		// (anyone still holding it keeps working, and its reaper closes
		// what they return).
		p.t.pools.CompareAndDelete(p.addr, p)
	}
	p.mu.Unlock()
	for _, c := range expired {
		c.close()
	}
}

func (p *pool) closeIdle() {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, c := range idle {
		c.close()
	}
}
