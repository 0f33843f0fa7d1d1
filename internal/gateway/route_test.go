package gateway

import (
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/flint-dev/flint/internal/platform"
)

func TestParseRoute(t *testing.T) {
	key := platform.AgentKey{Namespace: "default", Name: "echo"}
	tests := []struct {
		in      string
		want    Route
		wantErr string
	}{
		{in: "/v1/agents/default/echo", want: Route{Agent: key, Path: "/"}},
		{in: "/v1/agents/default/echo/", want: Route{Agent: key, Path: "/"}},
		{in: "/v1/agents/default/echo/a/b", want: Route{Agent: key, Path: "/a/b"}},
		{in: "/v1/agents/default/echo/a%2Fb", want: Route{Agent: key, Path: "/a/b", RawPath: "/a%2Fb"}},
		{in: "/v1/agents/default/echo/sse", want: Route{Agent: key, Path: "/sse"}},
		{in: "/v1/agents/default", wantErr: "agent name is missing"},
		{in: "/v1/agents//echo/x", wantErr: "namespace is missing"},
		{in: "/v1/agents/default/Echo/x", wantErr: `agent name "Echo" is invalid`},
		{in: "/v1/agents/def%2Fault/echo/x", wantErr: "namespace"},
		{in: "/v1/agents/default/echo/../other", wantErr: "dot segment"},
		{in: "/v1/agents/default/echo/a/%2e%2e/b", wantErr: "dot segment"},
		{in: "/v1/agents/default/echo/%zz", wantErr: "not validly escaped"},
		{in: "/v1/agents/default/" + strings.Repeat("a", 64) + "/x", wantErr: "must be no more than 63"},
	}
	for _, tt := range tests {
		got, err := ParseRoute(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseRoute(%q) error = %v, want it to contain %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseRoute(%q) error = %v", tt.in, err)
			continue
		}
		if got != tt.want {
			t.Errorf("ParseRoute(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
	if _, err := ParseRoute("/healthz"); !errors.Is(err, errNotAgentRoute) {
		t.Errorf("ParseRoute(/healthz) = %v, want errNotAgentRoute", err)
	}
}

// FuzzParseRoute checks the properties the gateway relies on: a parsed route
// names a valid agent, its forwarded path starts with "/", carries no dot
// segment, and its raw form decodes to exactly that path.
func FuzzParseRoute(f *testing.F) {
	for _, s := range []string{
		"/v1/agents/default/echo/", "/v1/agents/a/b/c%2Fd?x", "/v1/agents/x/y/../z",
		"/v1/agents/%2e/y", "/v1/agents/ns/n/%ff%fe", "/v1/agents/ns/n//a//b",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		r, err := ParseRoute(p)
		if err != nil {
			return
		}
		if r.Agent.Namespace == "" || r.Agent.Name == "" || strings.ContainsAny(r.Agent.Name+r.Agent.Namespace, "/%.") {
			t.Fatalf("ParseRoute(%q) gave agent %v", p, r.Agent)
		}
		if !strings.HasPrefix(r.Path, "/") {
			t.Fatalf("ParseRoute(%q) path %q does not start with /", p, r.Path)
		}
		for seg := range strings.SplitSeq(r.Path, "/") {
			if seg == "." || seg == ".." {
				t.Fatalf("ParseRoute(%q) path %q has a dot segment", p, r.Path)
			}
		}
		if r.RawPath != "" {
			if dec, err := url.PathUnescape(r.RawPath); err != nil || dec != r.Path {
				t.Fatalf("ParseRoute(%q) raw %q decodes to %q, want %q", p, r.RawPath, dec, r.Path)
			}
		}
	})
}
