package e2e

import (
	"encoding/json"
	"net/http"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/flint-dev/flint/api/v1alpha1"
	"github.com/flint-dev/flint/internal/testenv"
	"github.com/flint-dev/flint/internal/wire"
)

// TestInvokeEchoThroughBothGateways: an Agent created with the API is
// invoked through a gateway routing to pods and one routing through the
// Service; the echo sees the path and the gateway's headers, and the
// gateway records the invocation in the Agent's status.
func TestInvokeEchoThroughBothGateways(t *testing.T) {
	t.Parallel()
	ns := namespace(t)
	create(t, echoAgent(ns, "echo", func(a *v1alpha1.Agent) { a.Spec.Scaling.MinReplicas = ptr32(1) }))
	for _, gw := range []*gatewayProc{direct, viaSvc} {
		waitKnown(t, gw, ns, "echo")
		status, body, _, _ := timedGet(t, invokeURL(gw, ns, "echo", "/hello?x=1"))
		if status != http.StatusOK {
			t.Fatalf("%s: %d %s", gw.name, status, body)
		}
		var echo struct {
			Path    string              `json:"path"`
			Headers map[string][]string `json:"headers"`
		}
		if err := json.Unmarshal([]byte(body), &echo); err != nil {
			t.Fatalf("%s: %v in %s", gw.name, err, body)
		}
		if echo.Path != "/hello" || !slices.Equal(echo.Headers["X-Forwarded-Prefix"], []string{"/v1/agents/" + ns + "/echo"}) {
			t.Errorf("%s: the agent saw path %q, headers %v", gw.name, echo.Path, echo.Headers)
		}
	}
	testenv.Await(t, waitTimeout, "status.lastInvocationAt", func() (bool, string) {
		a := getAgent(t, ns, "echo")
		return a.Status.LastInvocationAt != nil, "not set"
	})
	status, body, _, _ := timedGet(t, invokeURL(direct, ns, "missing", "/"))
	if status != http.StatusNotFound {
		t.Errorf("unknown agent: %d %s, want 404", status, body)
	}
}

// TestColdStartFromZero: the first request to an agent at zero is held,
// wakes it at once through the manager's autoscaler, and is answered. The
// time from request to first byte is logged for each gateway.
func TestColdStartFromZero(t *testing.T) {
	ns := namespace(t)
	const runs = 3
	results := map[string][]time.Duration{}
	for _, gw := range []*gatewayProc{direct, viaSvc} {
		for i := range runs {
			name := gw.name + "-" + string(rune('a'+i))
			create(t, echoAgent(ns, name, nil))
			waitScaledToZero(t, ns, name)
			waitKnown(t, gw, ns, name)
			status, body, firstByte, res := timedGet(t, invokeURL(gw, ns, name, "/"))
			if status != http.StatusOK {
				t.Fatalf("%s: cold request: %d %s", gw.name, status, body)
			}
			if res.Header.Get(wire.HeaderColdStartWait) == "" {
				t.Errorf("%s: a cold response without X-Flint-Cold-Start-Wait", gw.name)
			}
			results[gw.name] = append(results[gw.name], firstByte)
		}
	}
	for name, ds := range results {
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		t.Logf("cold start, request at zero to first byte, %s: median %s (runs %v)", name, ds[len(ds)/2].Round(time.Millisecond), ds)
	}
}

func ptr32(n int32) *int32 { return &n }
