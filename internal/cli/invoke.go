package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/flint-dev/flint/api/v1alpha1"
	"github.com/flint-dev/flint/internal/gateway"
	"github.com/flint-dev/flint/internal/platform"
)

const invokeSynopsis = `Invoke an agent through the gateway and stream its answer to stdout
(server-sent events appear as they arrive). While the gateway holds the
request for a cold start, progress is shown on stderr. NAME is NAME (in -n)
or NAMESPACE/NAME. The exit status is 1 when the answer is an HTTP error.

Examples:
  flint invoke echo
  flint invoke echo -path '/hello?x=1'
  flint invoke echo -d '{"q": "hi"}'
  flint invoke echo -d @request.json -X PUT -H 'X-Trace: 1'
  flint invoke echo -path /sse?n=5`

// progressDelay is how long a request may take before invoke says what it
// is waiting for; warm requests finish well within it and print nothing.
const progressDelay = 250 * time.Millisecond

type invokeFlags struct {
	client    clientFlags
	namespace string
	method    string
	path      string
	data      string
	headers   stringList
	include   bool
	timeout   time.Duration
}

func runInvoke(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := invokeFlags{namespace: "default", path: "/"}
	fs := newFlagSet("invoke", invokeSynopsis, stderr)
	fs.Usage = usageWithArgs(fs, "invoke NAME", invokeSynopsis)
	fs.StringVar(&f.namespace, "n", f.namespace, "namespace of NAME when it has none")
	fs.StringVar(&f.method, "X", "", "HTTP method (default GET, or POST with -d)")
	fs.StringVar(&f.path, "path", f.path, "path (and query) under the agent, e.g. /hello?x=1")
	fs.StringVar(&f.data, "d", "", "request body; @FILE reads a file, @- reads stdin")
	fs.StringVar(&f.data, "data", "", "the same as -d")
	fs.Var(&f.headers, "H", "request header 'Name: value' (repeatable)")
	fs.BoolVar(&f.include, "i", false, "print the response status and headers before the body")
	fs.DurationVar(&f.timeout, "timeout", 0, "give up after this long (0: wait as long as the agent streams)")
	f.client.RegisterFlags(fs)
	key, err := oneAgentArg(fs, args, &f.namespace)
	if err != nil {
		return err
	}
	if f.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, f.timeout)
		defer cancel()
	}
	return invoke(ctx, f, key, os.Stdin, stdout, stderr)
}

func invoke(ctx context.Context, f invokeFlags, key platform.AgentKey, stdin io.Reader, stdout, stderr io.Writer) error {
	body, err := requestBody(f.data, stdin)
	if err != nil {
		return err
	}
	method := strings.ToUpper(f.method)
	if method == "" {
		method = http.MethodGet
		if body != nil {
			method = http.MethodPost
		}
	}
	if !strings.HasPrefix(f.path, "/") {
		f.path = "/" + f.path
	}
	c := f.client.client()
	var reader io.Reader
	if body != nil {
		reader = bytes.NewReader(body)
	}
	req, err := c.newRequest(ctx, method, routePath(key, f.path), reader)
	if err != nil {
		return err
	}
	if err := addHeaders(req, f.headers); err != nil {
		return err
	}
	if body != nil && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", guessContentType(body))
	}
	// What the agent is now: its protocol sets the MCP Accept header, and
	// whether it had a ready replica says what a slow answer waits for.
	before := describeBriefly(ctx, c, key)
	if before != nil && before.Spec.Protocol == v1alpha1.ProtocolMCP && req.Header.Get("Accept") == "" {
		req.Header.Set("Accept", mcpAccept) // streamable HTTP refuses requests without both
	}

	progress := startProgress(ctx, c, key, before, stderr)
	res, err := c.do(req)
	progress.stop(res)
	if err != nil {
		if f.timeout > 0 && errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("%s: no answer within -timeout %s", key, f.timeout)
		}
		return err
	}
	defer res.Body.Close()
	if f.include {
		fmt.Fprintf(stdout, "%s %s\r\n", res.Proto, res.Status)
		_ = res.Header.Write(stdout)
		fmt.Fprint(stdout, "\r\n")
	}
	if res.StatusCode < 400 {
		if _, err := io.Copy(stdout, res.Body); err != nil {
			if f.timeout > 0 && errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("%s: the answer was still streaming at -timeout %s", key, f.timeout)
			}
			if ctx.Err() == nil {
				return fmt.Errorf("%s: the answer was cut: %w", key, err)
			}
		}
		return nil
	}
	// An error: the body still goes to stdout as it came, and stderr says
	// what it means when it is one of Flint's own errors.
	var buf bytes.Buffer
	_, _ = io.Copy(io.MultiWriter(stdout, &buf), io.LimitReader(res.Body, 1<<20))
	_, _ = io.Copy(stdout, res.Body)
	if e, ok := parseGatewayError(buf.Bytes()); ok {
		return fmt.Errorf("%s: %s", key, e.describe(res.Status))
	}
	return fmt.Errorf("%s answered %s", key, res.Status)
}

// mcpAccept is what streamable HTTP requires a client to accept.
const mcpAccept = "application/json, text/event-stream"

// describeBriefly reads the agent's state before a call, or nil when the
// gateway cannot say within a moment (an older gateway, no admin access).
func describeBriefly(ctx context.Context, c *gatewayClient, key platform.AgentKey) *gateway.AgentDetail {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	d, err := c.Describe(ctx, key)
	if err != nil {
		return nil
	}
	return d
}

// requestBody resolves -d: literal text, @FILE or @- (stdin); nil without -d.
func requestBody(data string, stdin io.Reader) ([]byte, error) {
	switch {
	case data == "":
		return nil, nil
	case data == "@-":
		b, err := io.ReadAll(stdin)
		if err != nil {
			return nil, fmt.Errorf("read the body from stdin: %w", err)
		}
		return b, nil
	case strings.HasPrefix(data, "@"):
		b, err := os.ReadFile(data[1:])
		if err != nil {
			return nil, fmt.Errorf("-d %s: %w", data, err)
		}
		return b, nil
	default:
		return []byte(data), nil
	}
}

func addHeaders(req *http.Request, headers []string) error {
	for _, h := range headers {
		name, value, ok := strings.Cut(h, ":")
		if !ok || strings.TrimSpace(name) == "" {
			return fmt.Errorf("-H %q: write it as 'Name: value'", h)
		}
		req.Header.Add(strings.TrimSpace(name), strings.TrimSpace(value))
	}
	return nil
}

// guessContentType labels a body given without Content-Type: JSON when it
// parses as JSON, else plain text.
func guessContentType(body []byte) string {
	if json.Valid(body) {
		return "application/json"
	}
	return "text/plain; charset=utf-8"
}
