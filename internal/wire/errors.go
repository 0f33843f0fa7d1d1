package wire

import "encoding/json"

// ErrorBody is the JSON body of every error Flint answers itself, from the
// gateway or from a sidecar, so a client parses one shape. Reason is a
// stable word a program can branch on: the gateway's are CamelCase
// (NoCapacity, ColdStartTimeout, AgentNotFound, …); a sidecar's are its
// Reject* values and a few of its own (bypass, timeout, …), and reach a
// client only when the gateway could not resend the request.
type ErrorBody struct {
	// Error says what happened and what to do, for people.
	Error  string `json:"error"`
	Reason string `json:"reason"`
	// Agent is "namespace/name" when the gateway knows which agent.
	Agent string `json:"agent,omitempty"`
	// WaitedSeconds is how long the gateway held the request first.
	WaitedSeconds float64 `json:"waitedSeconds,omitempty"`
	// RetryAfterSeconds repeats the Retry-After header when one is set.
	RetryAfterSeconds *int `json:"retryAfterSeconds,omitempty"`
}

// JSON encodes b as one line, as json.Encoder would.
func (b ErrorBody) JSON() []byte {
	out, _ := json.Marshal(b) // only strings and numbers: cannot fail
	return append(out, '\n')
}
