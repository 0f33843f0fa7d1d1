package wire

import "time"

// The sidecar's drain timing, shared by the sidecar (its -drain-delay and
// -drain-timeout defaults) and the manager, which passes them to every
// sidecar it runs and sizes the pod's termination grace period from them.
const (
	// DefaultDrainDelay is how long a draining sidecar keeps serving, so
	// that endpoint removal (asynchronous to SIGTERM) reaches every caller.
	DefaultDrainDelay = 5 * time.Second
	// DefaultDrainTimeout is how long, after the delay, a draining
	// sidecar's in-flight requests get to finish before they are cut.
	DefaultDrainTimeout = 30 * time.Second
)
