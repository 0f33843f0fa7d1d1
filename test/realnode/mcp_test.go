package realnode_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// gatewaySwitch sends each request to the gateway pod the test picks, so
// one MCP session can start on one gateway and continue on another.
type gatewaySwitch struct {
	base   http.RoundTripper
	target atomic.Value // host:port
	apiKey string
}

func (g *gatewaySwitch) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.URL.Host = g.target.Load().(string)
	r.Host = r.URL.Host
	r.Header.Set("Authorization", "Bearer "+g.apiKey)
	return g.base.RoundTrip(r)
}

func callTool(t *testing.T, cs *mcp.ClientSession, name string, args any) map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		t.Fatalf("call %s: %v", name, err)
	}
	if res.IsError {
		t.Fatalf("call %s: tool error %v", name, res.Content)
	}
	b, _ := json.Marshal(res.StructuredContent)
	out := map[string]any{}
	_ = json.Unmarshal(b, &out)
	return out
}

func gatewayAddrs(t *testing.T) []string {
	t.Helper()
	_, ready := podsBy(t, flintNS, "app.kubernetes.io/component=gateway")
	var addrs []string
	for _, p := range ready {
		addrs = append(addrs, fmt.Sprintf("%s:8080", p.Status.PodIP))
	}
	if len(addrs) < 2 {
		t.Fatalf("want 2 Ready gateways, have %d", len(addrs))
	}
	return addrs
}

// An MCP session (official go-sdk client) initialized through one gateway
// continues through the other, on the same replica of two: the gateways
// share the session key Secret the manager created.
func TestMCPSessionThroughTwoGateways(t *testing.T) {
	in := installFlint(t)
	ns := newNamespace(t)
	a := exampleAgent(t, "mcp-go", ns)
	a.Spec.Scaling.MinReplicas = ptr.To[int32](2)
	in.create(t, a)
	in.awaitKnown(t, ns, "mcp-go")
	awaitReplicas(t, ns, "mcp-go", 2)
	gws := gatewayAddrs(t)

	sw := &gatewaySwitch{base: node.HTTPClient().Transport, apiKey: in.apiKey}
	sw.target.Store(gws[0])
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "realnode", Version: "1"}, nil).Connect(ctx,
		&mcp.StreamableClientTransport{Endpoint: fmt.Sprintf("http://gateway/v1/agents/%s/mcp-go/mcp", ns), HTTPClient: &http.Client{Transport: sw}, MaxRetries: 2},
		// A session-era protocol version: from 2026-07-28 the example
		// answers statelessly, on any replica.
		&mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
	if err != nil {
		t.Fatalf("initialize through gateway %s: %v", gws[0], err)
	}
	defer cs.Close()
	first := callTool(t, cs, "whoami", struct{}{})
	if first["replica"] == nil || first["session"] == "" {
		t.Fatalf("whoami gave %v", first)
	}
	sw.target.Store(gws[1])
	for i := range 5 {
		got := callTool(t, cs, "whoami", struct{}{})
		if got["replica"] != first["replica"] || got["pid"] != first["pid"] || got["session"] != first["session"] {
			t.Fatalf("call %d through gateway %s moved the session: %v, first %v", i+1, gws[1], got, first)
		}
	}
	greet := callTool(t, cs, "greet", map[string]any{"name": "real node"})
	t.Logf("session %s initialized through %s, 6 calls through %s on replica %v; greet: %v", cs.ID(), gws[0], gws[1], first["replica"], greet)
}

// A stdio MCP server (mcp-stdio image, the stdio annotation) runs under
// flint stdio-bridge, which an init container copies from the flint image;
// it answers through the gateway; deleting its pod mid-session stops the
// session's child and the bridge exits 0 within the grace period.
func TestStdioMCPAgentShutsDownCleanly(t *testing.T) {
	in := installFlint(t)
	ns := newNamespace(t)
	a := exampleAgent(t, "mcp-stdio", ns)
	a.Spec.Scaling.MinReplicas = ptr.To[int32](1)
	// The default request timeout (5m, grace 310s): the client's open
	// session stream (its standalone GET) used to hold the sidecar's drain,
	// and so the agent's preStop, until the drain timeout, and the bridge
	// got SIGTERM only after it. The sidecar now ends that stream between
	// events once its serving port has closed (drain delay 5s, then
	// -event-stream-grace 2s), so the pod goes within stopBound.
	const stopBound = 30 * time.Second
	in.create(t, a)
	in.awaitKnown(t, ns, "mcp-stdio")
	awaitReplicas(t, ns, "mcp-stdio", 1)
	_, ready := agentPods(t, ns, "mcp-stdio")
	pod := ready[0]

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	hc := &http.Client{Transport: &gatewaySwitch{base: node.HTTPClient().Transport, apiKey: in.apiKey}}
	hc.Transport.(*gatewaySwitch).target.Store(fmt.Sprintf("%s:%d", in.gateway.Spec.ClusterIP, in.gateway.Spec.Ports[0].Port))
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "realnode", Version: "1"}, nil).Connect(ctx,
		&mcp.StreamableClientTransport{Endpoint: fmt.Sprintf("http://gateway/v1/agents/%s/mcp-stdio/mcp", ns), HTTPClient: hc, MaxRetries: 2}, nil)
	if err != nil {
		t.Fatalf("initialize: %v\n%s", err, podsReport(ns))
	}
	defer cs.Close()
	who := callTool(t, cs, "whoami", struct{}{})
	greet := callTool(t, cs, "greet", map[string]any{"name": "stdio"})
	t.Logf("stdio session %s: whoami %v, greet %v", cs.ID(), who, greet)

	// Keep reading the agent container's log (the bridge's) from the node
	// while the pod goes; the kubelet removes it with the pod.
	var logMu sync.Mutex
	var lastLog []byte
	stopReading := make(chan struct{})
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		for {
			if b, err := node.ContainerLog(ns, pod.Name, "agent"); err == nil {
				logMu.Lock()
				if len(b) >= len(lastLog) {
					lastLog = b
				}
				logMu.Unlock()
			}
			select {
			case <-stopReading:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	w, err := node.Kube.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + pod.Name})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	grace := time.Duration(ptr.Deref(pod.Spec.TerminationGracePeriodSeconds, 30)) * time.Second
	deleted := time.Now()
	if err := node.Kube.CoreV1().Pods(ns).Delete(ctx, pod.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	var agentExit *corev1.ContainerStateTerminated
	var exitedAfter, goneAfter time.Duration
	for ev := range w.ResultChan() {
		p, ok := ev.Object.(*corev1.Pod)
		if !ok {
			continue
		}
		for _, s := range p.Status.ContainerStatuses {
			if s.Name == "agent" && s.State.Terminated != nil && agentExit == nil {
				agentExit, exitedAfter = s.State.Terminated, time.Since(deleted)
			}
		}
		if ev.Type == "DELETED" {
			goneAfter = time.Since(deleted)
			break
		}
	}
	time.Sleep(300 * time.Millisecond) // a last read after the exit
	close(stopReading)
	<-readDone
	if agentExit == nil {
		t.Fatalf("the watch never saw the agent container of %s terminate\n%s", pod.Name, podsReport(ns))
	}
	logMu.Lock()
	defer logMu.Unlock()
	logLines := strings.Split(strings.TrimSpace(string(lastLog)), "\n")
	t.Logf("pod deleted mid-session (grace %s, session stream open): agent container (bridge) exited %d (%s) %s after the delete, pod gone after %s; bridge log:\n  %s",
		grace, agentExit.ExitCode, agentExit.Reason, exitedAfter.Round(time.Millisecond), goneAfter.Round(time.Millisecond), strings.Join(logLines, "\n  "))
	if agentExit.ExitCode != 0 {
		t.Errorf("the bridge exited %d, want 0 (stopped in order, nothing killed)", agentExit.ExitCode)
	}
	if exitedAfter >= grace {
		t.Errorf("the bridge took %s, the whole grace period %s: it was killed", exitedAfter, grace)
	}
	if goneAfter == 0 || goneAfter > stopBound {
		t.Errorf("the pod went %s after the delete, want within %s: the session stream held the drain", goneAfter, stopBound)
	}
	all := strings.Join(logLines, "\n")
	for _, want := range []string{"stopping children", "session ended", "stdio bridge stopped"} {
		if !strings.Contains(all, want) {
			t.Errorf("the bridge's log does not say %q", want)
		}
	}
	if strings.Contains(all, "children still stopping") {
		t.Errorf("the bridge gave up on children still stopping")
	}
}
