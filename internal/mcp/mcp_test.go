package mcp

import (
	"strings"
	"testing"

	"github.com/flint-dev/flint/api/v1alpha1"
)

func TestStateless(t *testing.T) {
	for v, want := range map[string]bool{"": false, "2024-11-05": false, "2025-11-25": false, "2026-07-28": true, "2027-01-01": true} {
		if got := Stateless(v); got != want {
			t.Errorf("Stateless(%q) = %v, want %v", v, got, want)
		}
	}
}

func TestUsesStdio(t *testing.T) {
	agent := func(protocol v1alpha1.Protocol, transport string) *v1alpha1.Agent {
		a := &v1alpha1.Agent{}
		a.Spec.Protocol = protocol
		if transport != "" {
			a.Annotations = map[string]string{AnnotationTransport: transport}
		}
		return a
	}
	for _, tc := range []struct {
		a       *v1alpha1.Agent
		want    bool
		wantErr string
	}{
		{agent(v1alpha1.ProtocolMCP, ""), false, ""},
		{agent(v1alpha1.ProtocolMCP, TransportStdio), true, ""},
		{agent(v1alpha1.ProtocolMCP, TransportStreamableHTTP), false, ""},
		{agent(v1alpha1.ProtocolMCP, "sse"), false, `use "stdio"`},
		{agent(v1alpha1.ProtocolHTTP, TransportStdio), false, "only agents with protocol: mcp"},
	} {
		got, err := UsesStdio(tc.a)
		if got != tc.want || (tc.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("%v %v: got %v, %v; want %v, %q", tc.a.Spec.Protocol, tc.a.Annotations, got, err, tc.want, tc.wantErr)
		}
	}
}
