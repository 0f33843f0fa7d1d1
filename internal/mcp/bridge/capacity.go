package bridge

import "time"

// At -max-sessions (each session is one live child) a new session takes the
// place of the session idle the longest: many clients never send DELETE
// (one conformance run left 31 children), and an idle child is cheaper to
// lose than a new client is to refuse; its client gets 404 on its next
// request and starts a session again, as the spec says. Sessions with a
// request in progress, or an open event stream, are never evicted: when
// every session is busy, initialize gets 503 + Retry-After.

// admitNew reserves a place for a new session, evicting idle sessions while
// the bridge is full. It reports false when the bridge is shutting down or
// every session is busy.
func (b *Bridge) admitNew() bool {
	for range b.cfg.MaxSessions + 1 {
		ok, victim := b.reserve()
		if ok {
			return true
		}
		if victim == nil {
			return false
		}
		b.metrics.ended.WithLabelValues("evicted").Inc()
		b.closeSession(victim, "evicted: the bridge was at -max-sessions and this session was the longest idle")
	}
	return false
}

// reserve takes a place for a session about to start, refusing during
// shutdown; when the bridge is full it returns the session to evict.
func (b *Bridge) reserve() (bool, *session) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.stopping.Load() {
		return false, nil
	}
	if len(b.sessions)+b.starting < b.cfg.MaxSessions {
		b.starting++
		return true, nil
	}
	var victim *session
	var longest time.Duration
	now := time.Now()
	for _, s := range b.sessions {
		if s.ending.Load() || s.active.Load() > 0 {
			continue
		}
		if idle := s.idleFor(now); victim == nil || idle > longest {
			victim, longest = s, idle
		}
	}
	return false, victim
}

// admit turns a reserved place into the started session s (nil if it
// failed to start).
func (b *Bridge) admit(s *session) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.starting--
	if s != nil {
		b.sessions[s.id] = s
	}
	b.metrics.children.Set(float64(len(b.sessions)))
}
