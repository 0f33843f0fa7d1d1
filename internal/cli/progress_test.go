package cli

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flint-dev/flint/internal/gateway"
	"github.com/flint-dev/flint/internal/platform"
	"github.com/flint-dev/flint/internal/wire"
)

// replicaUpReader says a replica is ready and a request held: what the
// gateway shows at the end of a cold start, when the held request has not
// been forwarded yet.
type replicaUpReader struct{}

func (replicaUpReader) List(context.Context) ([]gateway.AgentSummary, error) { return nil, nil }
func (replicaUpReader) Describe(context.Context, platform.AgentKey) (*gateway.AgentDetail, error) {
	d := &gateway.AgentDetail{}
	d.ReadyReplicas, d.Held = 1, 1
	return d, nil
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestProgressNamesTheColdStart: a request sent while the agent had no
// ready replica is waiting for it to start, whatever the gateway shows by
// the time progress is printed, and the start is reported as the client
// waited it, not as the gateway's (shorter) hold.
func TestProgressNamesTheColdStart(t *testing.T) {
	key := platform.AgentKey{Namespace: "default", Name: "echo"}
	before := &gateway.AgentDetail{} // no ready replica when sent
	var out lockedBuffer
	p := startProgress(context.Background(), replicaUpReader{}, key, before, &out)
	time.Sleep(progressDelay + 200*time.Millisecond)
	res := &http.Response{Header: http.Header{wire.HeaderColdStartWait: {"828µs"}}}
	p.stop(res)
	got := out.String()
	if !strings.Contains(got, "waiting for default/echo to start…") || strings.Contains(got, "free replica") {
		t.Errorf("progress during a cold start:\n%s", got)
	}
	if strings.Contains(got, "828µs") || !strings.Contains(got, "default/echo started in ") {
		t.Errorf("the start is reported as the gateway's hold, not the client's wait:\n%s", got)
	}

	// Warm when sent: the gateway's view decides.
	out = lockedBuffer{}
	warm := &gateway.AgentDetail{}
	warm.ReadyReplicas = 1
	p = startProgress(context.Background(), replicaUpReader{}, key, warm, &out)
	time.Sleep(progressDelay + 200*time.Millisecond)
	p.stop(&http.Response{Header: http.Header{}})
	if got := out.String(); !strings.Contains(got, "waiting for a free replica of default/echo") || strings.Contains(got, "started in") {
		t.Errorf("progress for a full agent:\n%s", got)
	}
}
