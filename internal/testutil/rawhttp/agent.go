package rawhttp

import (
	"io"
	"net/http"
	"net/textproto"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// AgentHeader names, in the agent's answer, the request it answers.
const AgentHeader = "X-Fuzz-Agent"

// Saw is what the agent received for one request.
type Saw struct {
	Header   http.Header
	Host     string
	Complete atomic.Bool // the agent read the whole body
}

// Agent is the agent behind the server under test: it records what each
// request brought, by the last segment of its path (an id from IDs), and
// answers 200 naming it.
type Agent struct{ saw sync.Map }

func (a *Agent) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := LastSegment(r.URL.Path)
	s := &Saw{Header: r.Header.Clone(), Host: r.Host}
	a.saw.Store(id, s)
	if _, err := io.Copy(io.Discard, r.Body); err != nil {
		return
	}
	s.Complete.Store(true)
	w.Header().Set(AgentHeader, id)
	io.WriteString(w, "ok\n")
}

// Take returns and forgets what the agent received for id, or nil.
func (a *Agent) Take(id string) *Saw {
	if v, ok := a.saw.LoadAndDelete(id); ok {
		return v.(*Saw)
	}
	return nil
}

// LastSegment is what follows the last slash of a path.
func LastSegment(p string) string { return p[strings.LastIndexByte(p, '/')+1:] }

// CheckAnswer fails t when the answer and the agent's record disagree: an
// answer naming the agent that is not its 200 or has no record, a 2xx the
// agent did not give, or an answer from the server itself (who: "the
// gateway", "the sidecar") to a request the agent nevertheless received
// whole. It reports whether the agent gave the answer.
func CheckAnswer(t testing.TB, who, id string, res *http.Response, saw *Saw, shown string) (fromAgent bool) {
	t.Helper()
	fromAgent = res.Header.Get(AgentHeader) == id
	switch {
	case fromAgent && (res.StatusCode != 200 || saw == nil):
		t.Fatalf("agent answer %d without the agent's record for %q", res.StatusCode, shown)
	case !fromAgent && res.StatusCode < 300:
		t.Fatalf("%d that the agent did not give, for %q", res.StatusCode, shown)
	case !fromAgent && saw != nil && saw.Complete.Load():
		t.Fatalf("%s answered %d itself, but the agent received the whole request %q", who, res.StatusCode, shown)
	}
	return fromAgent
}

// HopByHop are the per-connection headers (RFC 9110 §7.6.1 and the ones
// ReverseProxy also treats so).
var HopByHop = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate", "Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// HopByHopLeak returns a hop-by-hop header the agent got, or "" if none.
// What a proxy may pass on is allowed: "Te: trailers", and for an upgrade
// (upgrade is the protocol the caller asked for, or "") "Connection:
// Upgrade" and the Upgrade header.
func HopByHopLeak(got http.Header, upgrade string) string {
	for _, k := range HopByHop {
		vs, ok := got[k]
		if !ok {
			continue
		}
		switch {
		case k == "Te" && len(vs) == 1 && vs[0] == "trailers":
		case k == "Connection" && upgrade != "" && len(vs) == 1 && vs[0] == "Upgrade":
		case k == "Upgrade" && upgrade != "" && len(vs) == 1 && vs[0] == upgrade:
		default:
			return k
		}
	}
	return ""
}

// ConnectionNamed returns the canonical header names listed in h's
// Connection header.
func ConnectionNamed(h http.Header) map[string]bool {
	out := map[string]bool{}
	for _, v := range h["Connection"] {
		for f := range strings.SplitSeq(v, ",") {
			if f = textproto.TrimString(f); f != "" {
				out[http.CanonicalHeaderKey(f)] = true
			}
		}
	}
	return out
}

// Trimmed joins header values as each hop's parser sees them: a value's
// surrounding white space (obs-fold leaves some) is not part of it.
func Trimmed(vs []string) string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = strings.TrimSpace(v)
	}
	return strings.Join(out, "|")
}

// TokenLeak returns the name of a header of got whose name or value holds
// token, or "".
func TokenLeak(got http.Header, token string) string {
	for k, vs := range got {
		for _, v := range vs {
			if strings.Contains(k+v, token) {
				return k
			}
		}
	}
	return ""
}
