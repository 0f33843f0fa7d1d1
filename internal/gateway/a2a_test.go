package gateway

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flint-dev/flint/api/v1alpha1"
	"github.com/flint-dev/flint/internal/platform/platformtest"
)

// a2aUpstream serves an agent card that names its own loopback address,
// and streams message/stream answers.
func a2aUpstream(t *testing.T) *httptest.Server {
	var self string
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/.well-known/agent-card.json", "/.well-known/agent.json":
			if r.Header.Get("Accept-Encoding") != "" {
				t.Errorf("card request asks for encoding %q; the gateway must get it plain", r.Header.Get("Accept-Encoding"))
			}
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"name":"echo","version":"1.0","protocolVersion":"0.3.0","url":"%[1]s/a2a/v1",
				"preferredTransport":"JSONRPC","documentationUrl":"https://docs.example.com/echo",
				"additionalInterfaces":[{"url":"%[1]s/a2a/v1","transport":"JSONRPC"},{"url":"%[1]s/rest?v=1","transport":"HTTP+JSON"}],
				"supportedInterfaces":[{"url":"%[1]s/a2a/v1","protocolBinding":"JSONRPC","protocolVersion":"1.0"}],
				"capabilities":{"streaming":true},"skills":[{"id":"echo","name":"Echo","tags":[]}],"defaultInputModes":["text"],"maxTokens":12345678901234567890}`, self)
		case "/a2a/v1":
			w.Header().Set("Content-Type", "text/event-stream")
			for i := range 3 {
				fmt.Fprintf(w, "data: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"kind\":\"status-update\",\"n\":%d}}\n\n", i)
				w.(http.Flusher).Flush()
				time.Sleep(150 * time.Millisecond)
			}
		default:
			http.NotFound(w, r)
		}
	}))
	self = up.URL
	t.Cleanup(up.Close)
	return up
}

func TestA2AAgentCardURLsPointAtTheGateway(t *testing.T) {
	a := mcpTestAgent(v1alpha1.ProtocolA2A)
	p := platformtest.New(a)
	p.SetReady(mcpKey, startSidecar(t, a2aUpstream(t), 0, "a2a-1"))
	_, gw := startGateway(t, p, nil, func(c *Config) { c.PublicURL = "https://flint.example.com/" })
	base := "https://flint.example.com/v1/agents/default/tools"

	for _, path := range []string{"/.well-known/agent-card.json", "/.well-known/agent.json"} {
		req, _ := http.NewRequest(http.MethodGet, gw.URL+RoutePrefix+"default/tools"+path, nil)
		req.Header.Set("Accept-Encoding", "gzip")
		res, err := client(t).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if cl, _ := strconv.Atoi(res.Header.Get("Content-Length")); cl != len(raw) {
			t.Errorf("%s: Content-Length %d for %d bytes", path, cl, len(raw))
		}
		var card struct {
			URL                  string           `json:"url"`
			DocumentationURL     string           `json:"documentationUrl"`
			AdditionalInterfaces []map[string]any `json:"additionalInterfaces"`
			SupportedInterfaces  []map[string]any `json:"supportedInterfaces"`
			MaxTokens            json.Number      `json:"maxTokens"`
		}
		dec := json.NewDecoder(strings.NewReader(string(raw)))
		dec.UseNumber()
		if err := dec.Decode(&card); err != nil {
			t.Fatalf("%s: %v in %s", path, err, raw)
		}
		want := []string{base + "/a2a/v1", base + "/a2a/v1", base + "/rest?v=1", base + "/a2a/v1"}
		got := []string{card.URL, card.AdditionalInterfaces[0]["url"].(string), card.AdditionalInterfaces[1]["url"].(string), card.SupportedInterfaces[0]["url"].(string)}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("%s: url %d is %q, want %q", path, i, got[i], want[i])
			}
		}
		if card.DocumentationURL != "https://docs.example.com/echo" || card.MaxTokens != "12345678901234567890" {
			t.Errorf("%s: fields that are not the agent's address changed: %s", path, raw)
		}
	}
}

// message/stream answers pass through event by event, unbuffered.
func TestA2AStreamPassesThrough(t *testing.T) {
	a := mcpTestAgent(v1alpha1.ProtocolA2A)
	p := platformtest.New(a)
	p.SetReady(mcpKey, startSidecar(t, a2aUpstream(t), 0, "a2a-1"))
	_, gw := startGateway(t, p, nil, nil)

	start := time.Now()
	res, err := client(t).Post(gw.URL+RoutePrefix+"default/tools/a2a/v1", "application/json",
		strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"message/stream","params":{}}`))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.Header.Get("X-Accel-Buffering") != "no" {
		t.Errorf("headers %v", res.Header)
	}
	var at []time.Duration
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "data: ") {
			at = append(at, time.Since(start))
		}
	}
	if len(at) != 3 || at[0] > 250*time.Millisecond || at[2]-at[0] < 250*time.Millisecond {
		t.Errorf("events arrived at %v; want 3, as sent 150ms apart", at)
	}
}

func TestRewriteCardURLsLeavesOtherJSONAlone(t *testing.T) {
	base := "http://gw/v1/agents/ns/a"
	for _, tc := range []struct{ in, want string }{
		{`{"url":"http://127.0.0.1:9/"}`, `{"url":"http://gw/v1/agents/ns/a/"}` + "\n"},
		{`{"url":"http://127.0.0.1:9"}`, `{"url":"http://gw/v1/agents/ns/a/"}` + "\n"},
		{`{"url":"http://gw/v1/agents/ns/a/x"}`, `{"url":"http://gw/v1/agents/ns/a/x"}` + "\n"},
		{`{"url":42,"supportedInterfaces":"nope"}`, `{"supportedInterfaces":"nope","url":42}` + "\n"},
		{`{"url":"http://h/a<b>&c"}`, `{"url":"http://gw/v1/agents/ns/a/a%3Cb%3E&c"}` + "\n"},
	} {
		out, err := rewriteCardURLs([]byte(tc.in), base)
		if err != nil || string(out) != tc.want {
			t.Errorf("%s: got %s (%v), want %s", tc.in, out, err, tc.want)
		}
	}
	if _, err := rewriteCardURLs([]byte(`[1,2]`), base); err == nil {
		t.Error("a JSON array was taken for a card")
	}
}
