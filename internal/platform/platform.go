// Package platform is the seam between Flint's data plane (gateway,
// autoscaler) and wherever replicas run: child processes on this machine
// (package local) or pods on Kubernetes (package kube). The gateway and the
// autoscaler depend only on this interface.
package platform

import (
	"context"
	"time"

	"github.com/flint-dev/flint/api/v1alpha1"
)

// AgentKey names an agent.
type AgentKey struct {
	Namespace string
	Name      string
}

// String returns "namespace/name".
func (k AgentKey) String() string { return k.Namespace + "/" + k.Name }

// KeyOf returns the key of an agent.
func KeyOf(a *v1alpha1.Agent) AgentKey { return AgentKey{Namespace: a.Namespace, Name: a.Name} }

// Endpoint is one ready replica as the data plane reaches it: through its
// sidecar, never the agent's own port.
type Endpoint struct {
	// Addr is host:port of the sidecar's serving port.
	Addr string
	// AdminAddr is host:port of the sidecar's admin port (health, stats, drain).
	AdminAddr string
	// Replica names the replica in logs and metrics (a pod name, or name-N locally).
	Replica string
	// TLSServerName, when set, means the serving port speaks TLS: the
	// gateway dials Addr but verifies (and sends as SNI) this name, the
	// agent's Service DNS name, since certificates name Services, not pod IPs.
	TLSServerName string
}

// Platform runs agents' replicas and reports which are ready.
type Platform interface {
	// Agent returns the agent's defaulted spec, or false when no such agent exists.
	Agent(key AgentKey) (*v1alpha1.Agent, bool)
	// Agents lists every known agent.
	Agents() []*v1alpha1.Agent
	// ReadyEndpoints returns the agent's ready replicas and a channel that is
	// closed at the next change to them, so callers wait for readiness
	// without polling.
	ReadyEndpoints(key AgentKey) ([]Endpoint, <-chan struct{})
	// Replicas is the number of replicas asked for (ready or not).
	Replicas(key AgentKey) int32
	// SetScale asks for n replicas of the agent.
	SetScale(ctx context.Context, key AgentKey, n int32) error
	// RecordInvocation notes that a request reached the agent at t. It must
	// be cheap: implementations coalesce and persist asynchronously.
	RecordInvocation(key AgentKey, t time.Time)
}

// FailureReporter is implemented by platforms that can tell why an agent
// cannot serve (its processes crash at start, its image cannot be pulled),
// so the gateway answers at once with the reason instead of holding
// requests until the cold-start timeout.
type FailureReporter interface {
	// Failure returns a short reason (e.g. CrashLoopBackOff) and a message
	// for a person; failing is false while the agent is healthy or starting.
	Failure(key AgentKey) (reason, message string, failing bool)
}
