// Package wire holds what Flint's processes say to each other over HTTP:
// the X-Flint-* headers, the gateway token header, the sidecar's admin
// paths, the reasons a sidecar refuses a request with, and the load and
// demand snapshots the sidecar, gateway, autoscaler and manager exchange.
// Each is declared here once; both sides of a wire import this package,
// which imports nothing of the module.
package wire

// Headers between Flint's processes and towards clients.
const (
	// HeaderPrefix starts every header Flint's processes use to talk to each
	// other. The sidecar removes any such header an agent sets, so a
	// response carrying one is Flint's own word.
	HeaderPrefix = "X-Flint-"

	// HeaderRejected (sidecar → gateway) marks a response the agent never
	// saw, so the gateway may safely send the request to another replica.
	// Its value is one of the Reject* reasons.
	HeaderRejected = "X-Flint-Rejected"

	// HeaderColdStartWait (gateway → client) is how long the request was
	// held waiting for a first replica, as a Go duration.
	HeaderColdStartWait = "X-Flint-Cold-Start-Wait"
	// HeaderQueueWait (gateway → client) is how long the request was held
	// waiting for a free slot on a ready replica, as a Go duration.
	HeaderQueueWait = "X-Flint-Queue-Wait"

	// HeaderInstance (gateway control port → manager) names the gateway
	// instance that served a demand snapshot or poke stream.
	HeaderInstance = "X-Flint-Instance"

	// HeaderGatewayToken carries the gateway token from the gateway to the
	// sidecar, which removes it before the request reaches the agent
	// (internal/gatewaytoken reads and compares the token).
	HeaderGatewayToken = "Flint-Gateway-Token"
)

// Values of HeaderRejected, also the "reason" of the sidecar's JSON error
// body.
const (
	// RejectCapacity: every slot and queue place was taken, or no slot
	// freed within the sidecar's queue timeout. 503 + Retry-After.
	RejectCapacity = "capacity"
	// RejectNotReady: the agent did not answer its probe within the
	// sidecar's ready wait. 503 + Retry-After.
	RejectNotReady = "not-ready"
	// RejectShutdown: still queued when the drain deadline cut everything.
	// 503 + Retry-After.
	RejectShutdown = "shutdown"
	// RejectUpstreamUnavailable: connecting to the agent failed. 502.
	RejectUpstreamUnavailable = "upstream-unavailable"
)

// The sidecar's admin paths. They live on its admin port only: every path
// on the serving port belongs to the agent.
const (
	PathHealthz      = "/healthz"
	PathReadyz       = "/readyz"
	PathStats        = "/stats" // serves Stats
	PathMetrics      = "/metrics"
	PathDrain        = "/drain"
	PathWaitForDrain = "/wait-for-drain"
)

// QueryReadyzWait is the /readyz query parameter (a Go duration) that lets
// a probe wait for the agent's first answer instead of failing while the
// replica starts: the kubelet's readiness probe sets it, so a normal cold
// start records no failed probe (Unhealthy event). It has no effect once
// the agent has answered once, nor while draining.
const QueryReadyzWait = "wait"
