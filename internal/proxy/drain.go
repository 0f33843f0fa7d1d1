package proxy

import (
	"context"
	"errors"
	"fmt"
	"time"
)

const (
	// forceCloseGrace is how long requests get to unwind once the drain
	// deadline has cancelled them (streams end cleanly, WebSockets close).
	forceCloseGrace = 500 * time.Millisecond
	// adminShutdownTimeout lets /wait-for-drain callers receive their answer.
	adminShutdownTimeout = 500 * time.Millisecond
	// idlePoll is how often the drain looks at the in-flight count; it only
	// runs during shutdown, keeping the request path free of notification.
	idlePoll = 10 * time.Millisecond
)

// ErrDrainTimeout is wrapped by Serve's error when requests were still in
// flight at the drain deadline and had to be cut. The sidecar has still shut
// down in order; callers may log it and exit normally.
var ErrDrainTimeout = errors.New("drain timed out")

// Drain starts the drain: readiness fails at once; Serve keeps serving for
// DrainDelay, then stops accepting and waits for in-flight requests. Safe to
// call any number of times, from anywhere, before or during Serve.
func (s *Sidecar) Drain() {
	s.drainOnce.Do(func() {
		s.draining.Store(true)
		close(s.drainReq)
		s.notifyReady()
		s.log.Info("drain started: readiness now fails", "drainDelay", s.cfg.DrainDelay, "drainTimeout", s.cfg.DrainTimeout)
	})
}

// notifyReady tells Config.OnReadyChange when Ready's value changes, so an
// embedding runtime updates its endpoints at once instead of polling.
func (s *Sidecar) notifyReady() {
	if s.cfg.OnReadyChange == nil {
		return
	}
	s.readyMu.Lock()
	defer s.readyMu.Unlock()
	if ready := s.Ready(); ready != s.reportedReady {
		s.reportedReady = ready
		s.cfg.OnReadyChange(ready)
	}
}

// Draining reports whether a drain has started.
func (s *Sidecar) Draining() bool { return s.draining.Load() }

// Drained is closed once the drain has finished with the serving port.
func (s *Sidecar) Drained() <-chan struct{} { return s.drained }

func (s *Sidecar) aborted() bool { return s.abortedFlag.Load() }

// shutdown runs the drain after Drain: serve on through DrainDelay (callers
// learn of the endpoint's removal asynchronously and keep sending meanwhile),
// then close the serving port and wait up to DrainTimeout for in-flight
// requests, including hijacked connections that http.Server.Shutdown does
// not track (event streams that answer no request in progress end after
// EventStreamGrace, see drain_streams.go), then release /wait-for-drain and close the admin port last so
// readiness keeps failing until the very end.
func (s *Sidecar) shutdown(errc <-chan error, serveErr error) error {
	if serveErr == nil && s.cfg.DrainDelay > 0 {
		t := time.NewTimer(s.cfg.DrainDelay)
		select {
		case <-t.C:
		case serveErr = <-errc:
			t.Stop()
		}
	}
	inFlight, queued := s.acc.counts()
	s.log.Info("drain: closing the serving port, waiting for in-flight requests",
		"inFlight", inFlight, "queued", queued, "timeout", s.cfg.DrainTimeout)

	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.DrainTimeout)
	defer cancel()
	endStreams := time.AfterFunc(s.cfg.EventStreamGrace, func() {
		if n := s.streams.endAll(); n > 0 {
			s.log.Info("drain: ending open event streams between events so their clients reconnect elsewhere",
				"streams", n, "after", s.cfg.EventStreamGrace)
		}
	})
	defer endStreams.Stop()
	err := s.serving.Shutdown(ctx)
	if err == nil {
		err = s.waitIdle(ctx)
	}
	var timedOut error
	if err != nil {
		inFlight, queued = s.acc.counts()
		s.log.Warn("drain timeout: cutting the requests still in flight",
			"inFlight", inFlight, "queued", queued, "timeout", s.cfg.DrainTimeout)
		timedOut = fmt.Errorf("%w after %s: cut %d in-flight and %d queued requests",
			ErrDrainTimeout, s.cfg.DrainTimeout, inFlight, queued)
		s.abortedFlag.Store(true)
		s.abort()
		if s.relaySrv != nil {
			s.relaySrv.CutUpstreams()
		}
		gctx, gcancel := context.WithTimeout(context.Background(), forceCloseGrace)
		// Shutdown again rather than only watching the count: a cancelled
		// stream's handler returns before the server writes its final chunk,
		// and only the server knows when that has gone out.
		_ = s.serving.Shutdown(gctx)
		_ = s.waitIdle(gctx)
		gcancel()
		_ = s.serving.Close()
	} else {
		s.log.Info("drain complete")
	}
	close(s.drained)

	actx, acancel := context.WithTimeout(context.Background(), adminShutdownTimeout)
	defer acancel()
	if err := s.adminSrv.Shutdown(actx); err != nil {
		_ = s.adminSrv.Close()
	}
	return errors.Join(serveErr, timedOut)
}

// waitIdle waits until no request is queued or in flight.
func (s *Sidecar) waitIdle(ctx context.Context) error {
	t := time.NewTicker(idlePoll)
	defer t.Stop()
	for {
		if inFlight, queued := s.acc.counts(); inFlight == 0 && queued == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for in-flight requests: %w", ctx.Err())
		case <-t.C:
		}
	}
}
