package platform

// Draining is implemented by platforms that keep a stopping replica
// reachable for a while so the sessions it holds can finish (MCP sessions
// live in one replica's memory). The gateway never sends a new session or a
// stateless request to a draining replica, only requests of sessions that
// replica issued; once the replica leaves both lists, requests of its
// sessions get 404 and clients start new sessions elsewhere.
//
// Locally the runtime lists a stopping MCP replica here for its session
// drain window. On Kubernetes the gateway's platform lists endpoints whose
// EndpointSlice conditions say terminating=true (whether or not serving):
// the pod stays in the slice until it has exited, and once its sidecar stops
// accepting, a refused connection tells the gateway the session is gone.
type Draining interface {
	// DrainingEndpoints returns the agent's replicas that no longer take
	// new work but still serve the sessions they hold, and a channel closed
	// at the next change to them.
	DrainingEndpoints(key AgentKey) ([]Endpoint, <-chan struct{})
}

// PublishEndpoints sets an agent's draining and ready endpoints, draining
// first: a replica moving from ready to draining is then in one list or
// both at every instant. The other order leaves a moment in which it is in
// neither, and a gateway looking then takes its sessions for gone: it ends
// their streams and answers their requests 404 as the session drain begins.
func PublishEndpoints(key AgentKey, ready, draining *EndpointSet, readyEps, drainingEps []Endpoint) {
	draining.Set(key, drainingEps)
	ready.Set(key, readyEps)
}
