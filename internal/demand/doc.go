// Package demand carries what gateways know about agents' load to the
// manager's autoscaler on Kubernetes, where they run in different pods.
//
// Gateways serve it; the autoscaler's leader collects it. The gateway's
// control port (not its invocation port) answers, to a bearer token shared
// through a Secret:
//
//   - GET /v1/demand: every agent's held, in-flight, refused and received
//     requests as this gateway counts them, and this gateway's instance id
//     (a restart resets its counters). The Collector scrapes every gateway
//     each interval and sums them, keeping totals monotonic across gateway
//     restarts, so the autoscaler sees held and refused requests as demand.
//   - GET /v1/pokes: a stream with one line per request held for an agent
//     with no ready replica, sent the moment it is held. The Collector keeps
//     one open to every gateway and pokes the autoscaler, which asks for a
//     replica at once rather than at its next tick.
//
// Why the leader dials the gateways rather than gateways calling the
// manager: only the elected leader runs the autoscaler, and a Service in
// front of the manager replicas would send half the pokes to a standby.
// The leader finds every gateway pod by resolving a headless Service's DNS
// name (no API access needed), and its connections end when it loses the
// lease. A poke is an optimisation: if a stream is down, the next scrape
// still shows the held request and the agent wakes one interval later.
package demand
