// Package mcp holds what Flint's components share about the Model Context
// Protocol: the HTTP headers the gateway routes on, how to tell the
// stateless protocol era from the session era, and how an Agent declares
// that its command is a stdio server to be run behind `flint stdio-bridge`.
//
// The protocol itself (framing, sessions, SSE) is the official go-sdk's;
// see the session and bridge subpackages for what Flint builds on it.
package mcp

import (
	"fmt"

	"github.com/flint-dev/flint/api/v1alpha1"
)

// HTTP headers of MCP's streamable HTTP transport.
const (
	// HeaderSessionID carries a session's id in the session era
	// (protocol versions up to 2025-11-25).
	HeaderSessionID = "Mcp-Session-Id"
	// HeaderProtocolVersion names the protocol version of a request.
	HeaderProtocolVersion = "Mcp-Protocol-Version"
)

// FirstStatelessVersion is the first protocol version without sessions
// (SEP-2567): no initialize handshake, no Mcp-Session-Id, every request
// stands alone and may go to any replica.
const FirstStatelessVersion = "2026-07-28"

// LegacyVersions are the session-era protocol versions, newest first.
var LegacyVersions = []string{"2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"}

// Stateless reports whether a request's MCP-Protocol-Version belongs to the
// stateless era. Versions are dates, so they compare as strings; an absent
// header means 2025-03-26 (the spec's rule), which has sessions.
func Stateless(protocolVersion string) bool {
	return protocolVersion >= FirstStatelessVersion
}

// AnnotationTransport on an Agent with protocol: mcp says how its command
// speaks MCP. "stdio" runs the command behind `flint stdio-bridge`, which
// serves it over streamable HTTP with one child per session; the default,
// "streamable-http", expects the command to listen on $PORT itself.
//
// It is an annotation rather than a spec field because it changes how Flint
// runs the container, not what the agent is: the API stays the same for
// both kinds of server, and the Kubernetes manager reads the same key.
const AnnotationTransport = "flint.dev/mcp-transport"

// Values of AnnotationTransport.
const (
	TransportStdio          = "stdio"
	TransportStreamableHTTP = "streamable-http"
)

// UsesStdio reports whether the agent's command is a stdio MCP server that
// must run behind the bridge. An unknown transport, or one on an agent that
// does not speak MCP, is an error naming the annotation, so a typo does not
// silently start the server in the wrong mode.
func UsesStdio(a *v1alpha1.Agent) (bool, error) {
	v, ok := a.Annotations[AnnotationTransport]
	if !ok {
		return false, nil
	}
	switch {
	case a.Spec.Protocol != v1alpha1.ProtocolMCP:
		return false, fmt.Errorf("metadata.annotations[%s]: only agents with protocol: mcp have an MCP transport (this one has protocol: %q)", AnnotationTransport, a.Spec.Protocol)
	case v == TransportStdio:
		return true, nil
	case v == TransportStreamableHTTP:
		return false, nil
	default:
		return false, fmt.Errorf("metadata.annotations[%s] is %q: use %q (run the command behind the stdio bridge) or %q (the command serves HTTP on $PORT)",
			AnnotationTransport, v, TransportStdio, TransportStreamableHTTP)
	}
}
