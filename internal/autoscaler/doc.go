// Package autoscaler decides how many replicas each Agent needs and applies
// that decision through the platform.
//
// It has two halves, kept apart so the rules can be tested without time or
// network:
//
//   - Decider is pure: it is fed one Observation per tick together with the
//     time (Knative style, the clock is passed in) and returns a Decision with a
//     Reason. Stable and panic windows, rate limits, hysteresis and scale to
//     zero all live there.
//   - Loop is the machinery around it: every tick it scrapes each ready
//     replica's sidecar stats in parallel, adds what the gateway knows (held
//     and refused requests), calls the Decider and calls SetScale. Poke is the
//     gateway's fast path from zero to one replica. Each agent's ticks and
//     pokes are handled by one worker goroutine that owns its state; an agent
//     at rest at zero has none.
//
// Unlike Knative, which only sums admitted in-flight requests (capped at
// concurrency × replicas, so it can never see demand above current capacity),
// Flint counts requests queued in sidecars, requests held by the gateway and
// requests the gateway refused. A step of load therefore shows up at its full
// size within a tick. docs/autoscaling.md describes the algorithm and its
// defaults; bench/sim replays load traces against the Decider.
package autoscaler
