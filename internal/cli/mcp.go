package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/flint-dev/flint/internal/gateway"
	"github.com/flint-dev/flint/internal/platform"
)

const mcpSynopsis = `Talk to an MCP agent through the gateway with the official MCP client
(streamable HTTP; a session when the server keeps them):

  flint mcp tools AGENT                 list the agent's tools and their arguments
  flint mcp call AGENT TOOL [key=value...]
                                        call a tool; a value is JSON when it parses
                                        as JSON (3, true, [1,2], {"a":1}), else a string;
                                        -args '{...}' gives all arguments as one object
  flint mcp ping AGENT                  check the agent answers, and how fast

Progress notifications and log messages the server sends during a call are
printed on stderr as they arrive; the result goes to stdout (text content as
text, structured content as JSON). The exit status is 1 when the tool
reports an error. AGENT is NAME (in -n) or NAMESPACE/NAME.`

type mcpFlags struct {
	client    clientFlags
	namespace string
	path      string
	args      string
	timeout   time.Duration
}

func runMCP(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := mcpFlags{namespace: "default", path: "/mcp"}
	fs := newFlagSet("mcp", mcpSynopsis, stderr)
	fs.Usage = usageWithArgs(fs, "mcp tools|call|ping AGENT [TOOL key=value...]", mcpSynopsis)
	fs.StringVar(&f.namespace, "n", f.namespace, "namespace of AGENT when it has none")
	fs.StringVar(&f.path, "path", f.path, "the agent's MCP endpoint, under the agent")
	fs.StringVar(&f.args, "args", "", "call: the tool's arguments as one JSON object (key=value arguments are added to it)")
	fs.DurationVar(&f.timeout, "timeout", 0, "give up after this long (0: no limit)")
	f.client.RegisterFlags(fs)
	pos, err := parseWithArgs(fs, args)
	if err != nil {
		return err
	}
	usage := func(msg string) error {
		fmt.Fprintln(stderr, msg)
		fs.Usage()
		return errUsage
	}
	if len(pos) < 2 {
		return usage("give a subcommand and an agent: flint mcp tools|call|ping AGENT")
	}
	sub := pos[0]
	key, err := parseAgentName(pos[1], f.namespace)
	if err != nil {
		return err
	}
	switch {
	case sub != "tools" && sub != "call" && sub != "ping":
		return usage(fmt.Sprintf("unknown subcommand %q: use tools, call or ping", sub))
	case sub == "call" && len(pos) < 3:
		return usage("flint mcp call AGENT TOOL [key=value...]: give the tool's name")
	case sub != "call" && len(pos) > 2:
		return usage(fmt.Sprintf("unexpected arguments after the agent: %v", pos[2:]))
	}
	if f.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, f.timeout)
		defer cancel()
	}
	var toolArgs map[string]any
	if sub == "call" {
		if toolArgs, err = toolArguments(f.args, pos[3:]); err != nil {
			return err
		}
	}
	// ping is a utility of the session era; the SDK's client sends it
	// without the stateless era's _meta, which 2026-07-28 servers refuse.
	var session *mcp.ClientSessionOptions
	if sub == "ping" {
		session = &mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"}
	}
	cs, err := connectMCP(ctx, f, key, session, stderr)
	if err != nil {
		return err
	}
	defer cs.Close()
	switch sub {
	case "tools":
		return listTools(ctx, cs, stdout)
	case "ping":
		start := time.Now()
		if err := cs.Ping(ctx, nil); err != nil {
			return fmt.Errorf("%s: ping: %w", key, err)
		}
		fmt.Fprintf(stdout, "%s answered ping in %s\n", key, gateway.RoundWait(time.Since(start)))
		return nil
	default:
		return callTool(ctx, cs, key, pos[2], toolArgs, stdout)
	}
}

// connectMCP starts an MCP session with the agent through the gateway.
func connectMCP(ctx context.Context, f mcpFlags, key platform.AgentKey, session *mcp.ClientSessionOptions, stderr io.Writer) (*mcp.ClientSession, error) {
	gc := f.client.client()
	if err := gc.check(); err != nil {
		return nil, err
	}
	path := f.path
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	endpoint := gc.base + routePath(key, path)
	hc := &http.Client{Transport: &bearer{token: gc.token, base: http.DefaultTransport}}
	client := mcp.NewClient(&mcp.Implementation{Name: "flint", Version: version()}, &mcp.ClientOptions{
		ProgressNotificationHandler: func(_ context.Context, req *mcp.ProgressNotificationClientRequest) {
			p := req.Params
			line := fmt.Sprintf("progress %g", p.Progress)
			if p.Total > 0 {
				line += fmt.Sprintf("/%g", p.Total)
			}
			if p.Message != "" {
				line += ": " + p.Message
			}
			fmt.Fprintln(stderr, line)
		},
		LoggingMessageHandler: func(_ context.Context, req *mcp.LoggingMessageRequest) {
			data, _ := json.Marshal(req.Params.Data)
			fmt.Fprintf(stderr, "log %s: %s\n", req.Params.Level, data)
		},
	})
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: endpoint, HTTPClient: hc, MaxRetries: 2}, session)
	if err != nil {
		return nil, fmt.Errorf("%s: cannot start an MCP session at %s: %w (is it an MCP agent, with its endpoint at -path %s?)", key, endpoint, err, path)
	}
	return cs, nil
}

// bearer adds the gateway's credentials to every request of the MCP client.
type bearer struct {
	token string
	base  http.RoundTripper
}

func (b *bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	if b.token == "" {
		return b.base.RoundTrip(r)
	}
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.base.RoundTrip(r)
}

// toolArguments merges -args (a JSON object) with key=value arguments.
func toolArguments(object string, kvs []string) (map[string]any, error) {
	args := map[string]any{}
	if object != "" {
		if err := json.Unmarshal([]byte(object), &args); err != nil {
			return nil, fmt.Errorf("-args must be a JSON object such as '{\"name\": \"Ada\"}': %w", err)
		}
	}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("argument %q: write it as key=value", kv)
		}
		var val any
		if err := json.Unmarshal([]byte(v), &val); err != nil {
			val = v // not JSON: a string
		}
		args[k] = val
	}
	return args, nil
}

func listTools(ctx context.Context, cs *mcp.ClientSession, out io.Writer) error {
	n := 0
	for tool, err := range cs.Tools(ctx, nil) {
		if err != nil {
			return fmt.Errorf("tools/list: %w", err)
		}
		n++
		fmt.Fprintf(out, "%s", tool.Name)
		if params := toolParams(tool.InputSchema); params != "" {
			fmt.Fprintf(out, " %s", params)
		}
		fmt.Fprintln(out)
		if tool.Description != "" {
			fmt.Fprintf(out, "    %s\n", tool.Description)
		}
	}
	if n == 0 {
		fmt.Fprintln(out, "(no tools)")
	}
	return nil
}

// toolParams renders a tool's input schema as key=TYPE arguments, the
// required ones first, optional ones in brackets.
func toolParams(schema any) string {
	var s struct {
		Properties map[string]struct {
			Type any `json:"type"`
		} `json:"properties"`
		Required []string `json:"required"`
	}
	b, _ := json.Marshal(schema)
	if json.Unmarshal(b, &s) != nil || len(s.Properties) == 0 {
		return ""
	}
	required := map[string]bool{}
	for _, r := range s.Required {
		required[r] = true
	}
	names := make([]string, 0, len(s.Properties))
	for k := range s.Properties {
		names = append(names, k)
	}
	sort.Slice(names, func(i, j int) bool {
		if required[names[i]] != required[names[j]] {
			return required[names[i]]
		}
		return names[i] < names[j]
	})
	parts := make([]string, len(names))
	for i, k := range names {
		typ := fmt.Sprint(s.Properties[k].Type)
		if s.Properties[k].Type == nil {
			typ = "any"
		}
		parts[i] = k + "=" + typ
		if !required[k] {
			parts[i] = "[" + parts[i] + "]"
		}
	}
	return strings.Join(parts, " ")
}

func callTool(ctx context.Context, cs *mcp.ClientSession, key platform.AgentKey, name string, args map[string]any, out io.Writer) error {
	params := &mcp.CallToolParams{Name: name, Arguments: args}
	params.SetProgressToken("flint-" + name)
	res, err := cs.CallTool(ctx, params)
	if err != nil {
		return fmt.Errorf("%s: tools/call %s: %w", key, name, err)
	}
	printed := false
	for _, c := range res.Content {
		if t, ok := c.(*mcp.TextContent); ok {
			fmt.Fprintln(out, t.Text)
			printed = true
		}
	}
	if res.StructuredContent != nil && !printed {
		b, err := json.MarshalIndent(res.StructuredContent, "", "  ")
		if err == nil {
			fmt.Fprintln(out, string(b))
			printed = true
		}
	}
	if !printed {
		for _, c := range res.Content {
			b, _ := json.Marshal(c)
			fmt.Fprintln(out, string(b))
		}
	}
	if res.IsError {
		return errors.New(key.String() + ": tool " + name + " reported an error")
	}
	return nil
}
