package wire

import "testing"

// The body is client-visible: these bytes are what the gateway and the
// sidecar wrote before they shared the type, and must stay so.
func TestErrorBodyJSON(t *testing.T) {
	two := 2
	for _, c := range []struct {
		body ErrorBody
		want string
	}{
		{ErrorBody{Error: "full", Reason: RejectCapacity, RetryAfterSeconds: &two},
			`{"error":"full","reason":"capacity","retryAfterSeconds":2}` + "\n"},
		{ErrorBody{Error: "gone", Reason: "bypass"}, `{"error":"gone","reason":"bypass"}` + "\n"},
		{ErrorBody{Error: "no room", Reason: "NoCapacity", Agent: "ns/a", WaitedSeconds: 1.5, RetryAfterSeconds: &two},
			`{"error":"no room","reason":"NoCapacity","agent":"ns/a","waitedSeconds":1.5,"retryAfterSeconds":2}` + "\n"},
	} {
		if got := string(c.body.JSON()); got != c.want {
			t.Errorf("JSON() = %q, want %q", got, c.want)
		}
	}
}
