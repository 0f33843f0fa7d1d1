// Package sim replays a load trace against the autoscaler's real Decider with
// a simulated fleet, on a simulated clock: no sleeping, no network, the same
// result for the same trace and seed. bench/sim is its command-line front
// end (CSV and plots); tests use it to hold the algorithm to numbers (time to
// capacity after a step, flapping, requests refused).
//
// The model, per resolution step (10ms by default):
//
//   - Requests arrive as a Poisson process whose rate the trace gives; each
//     needs an exponentially distributed service time (mean service-time).
//   - A replica turns ready startup after it is asked for. It serves up to
//     concurrency requests at once and queues up to sidecar-queue more; it
//     reports sidecar Stats (cumulative integrals), scraped each tick like the
//     real Loop does, with an optional random scrape failure rate.
//   - The gateway sends a request to the least-loaded ready replica with a
//     free slot (or queue space); otherwise it holds it, FIFO, up to
//     hold-queue requests and hold-timeout each, and refuses the rest. A hold
//     while nothing is asked for pokes the Decider at once.
//   - Every tick the Decider sees exactly what the Loop would give it: one
//     sample per ready replica, plus the gateway's held and refused counts.
//     Replicas removed by a scale-down stop taking requests and finish the
//     ones they have.
package sim
