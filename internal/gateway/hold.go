package gateway

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/flint-dev/flint/internal/platform"
)

// holdCold is the activator: it holds a request while the agent has no
// ready replica, tells the autoscaler at once, and returns as soon as the
// platform reports a change to the ready set (no polling). It fails with
// 504 after the agent's cold-start timeout and 503 when the hold queue is full.
func (g *Gateway) holdCold(ctx context.Context, c *call, set *backendSet) error {
	leave, ok := c.st.hold(g.cfg.MaxHeld)
	if !ok {
		c.st.rejected.Add(1)
		c.st.metrics.rejected.WithLabelValues("hold_full").Inc()
		return errHoldFull(c.key, g.cfg.RetryAfter)
	}
	defer leave()
	debug := g.log.Enabled(ctx, slog.LevelDebug) // bench/coldstart times the phases of a cold start from these lines
	if c.coldWait == 0 {
		c.st.metrics.coldStarts.Inc()
		if debug {
			g.log.Debug("cold start: holding request", "agent", c.key.String())
		}
	}
	if g.scaler != nil {
		g.scaler.Poke(c.key)
	}
	limit := c.agent.Spec.ColdStartTimeout()
	remaining := limit - c.coldWait
	if remaining <= 0 {
		return g.coldTimeout(c)
	}
	if err := g.failing(c); err != nil {
		return err
	}
	start := time.Now()
	timer := time.NewTimer(remaining)
	defer timer.Stop()
	// A crash loop does not change the ready set; look at the platform's
	// health now and then so held requests learn of it.
	recheck := time.NewTicker(failureRecheck)
	defer recheck.Stop()
	var err error
	timedOut := false
wait:
	for {
		select {
		case <-set.changed:
			break wait
		case <-timer.C:
			timedOut = true
			break wait
		case <-recheck.C:
			if err = g.failing(c); err != nil {
				break wait
			}
		case <-ctx.Done():
			err = ctx.Err()
			break wait
		}
	}
	c.coldWait += time.Since(start)
	if debug {
		g.log.Debug("cold start: hold ended", "agent", c.key.String(), "waited", c.coldWait)
	}
	if timedOut {
		return g.coldTimeout(c)
	}
	return err
}

// failureRecheck is how often a held request asks the platform whether the
// agent is failing.
const failureRecheck = time.Second

// failing returns the error for an agent the platform reports as failing.
func (g *Gateway) failing(c *call) error {
	fr, ok := g.platform.(platform.FailureReporter)
	if !ok {
		return nil
	}
	reason, message, failing := fr.Failure(c.key)
	if !failing {
		return nil
	}
	c.st.rejected.Add(1)
	c.st.metrics.rejected.WithLabelValues("agent_failing").Inc()
	return errAgentFailing(c.key, reason, message, g.cfg.RetryAfter)
}

func (g *Gateway) coldTimeout(c *call) error {
	c.st.rejected.Add(1)
	c.st.metrics.rejected.WithLabelValues("cold_start_timeout").Inc()
	c.st.metrics.coldStartWait.Observe(c.coldWait.Seconds())
	g.log.Warn("cold start timed out", "agent", c.key, "waited", c.coldWait)
	return errColdStartTimeout(c.key, c.coldWait)
}

// holdForCapacity holds a request while every ready replica is full, for at
// most the capacity-hold time in total, waking when a slot frees or a new
// replica turns ready. Held requests are demand the autoscaler sees.
func (g *Gateway) holdForCapacity(ctx context.Context, c *call, set *backendSet, tried []*backend) error {
	remaining := g.cfg.CapacityHold - c.capacityWait
	if remaining <= 0 {
		return g.noCapacity(c)
	}
	leave, ok := c.st.hold(g.cfg.MaxHeld)
	if !ok {
		c.st.rejected.Add(1)
		c.st.metrics.rejected.WithLabelValues("hold_full").Inc()
		return errHoldFull(c.key, g.cfg.RetryAfter)
	}
	defer leave()
	if g.scaler != nil {
		// Every replica is full: let the autoscaler decide now, not at its next tick.
		g.scaler.Poke(c.key)
	}
	start := time.Now()
	wctx, cancel := context.WithTimeout(ctx, remaining)
	defer cancel()
	err := c.st.waitForCapacity(wctx, set, int64(c.agent.Spec.Concurrency), tried)
	c.capacityWait += time.Since(start)
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.Is(err, context.DeadlineExceeded):
		return g.noCapacity(c)
	default:
		return err
	}
}

func (g *Gateway) noCapacity(c *call) error {
	c.st.rejected.Add(1)
	c.st.metrics.rejected.WithLabelValues("no_capacity").Inc()
	return errNoCapacity(c.key, c.capacityWait, g.cfg.RetryAfter)
}
