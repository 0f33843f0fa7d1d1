package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"syscall"

	"github.com/flint-dev/flint/internal/gateway"
	"github.com/flint-dev/flint/internal/platform"
)

// defaultGateway is where `flint up` listens unless told otherwise.
const defaultGateway = "http://127.0.0.1:8080"

// agentReader is what the people-facing commands (agents, describe, invoke's
// progress) read about agents. gatewayClient reads a gateway's admin API,
// which is how the local runtime is reached; a Kubernetes implementation
// reading Agent resources through kubeconfig satisfies the same interface.
type agentReader interface {
	// List returns every agent, sorted by namespace and name.
	List(ctx context.Context) ([]gateway.AgentSummary, error)
	// Describe returns one agent; errAgentNotFound when there is none.
	Describe(ctx context.Context, key platform.AgentKey) (*gateway.AgentDetail, error)
}

var errAgentNotFound = errors.New("no such agent")

// clientFlags are the connection flags every people-facing command takes.
type clientFlags struct {
	Gateway string
	Token   string
	Output  string
}

// RegisterFlags binds -gateway and -token. Their environment defaults are
// applied in client(), not as flag defaults, so -h never prints a token.
func (c *clientFlags) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Gateway, "gateway", "", "the gateway's URL (default $FLINT_GATEWAY, else "+defaultGateway+")")
	fs.StringVar(&c.Token, "token", "", "API key or JWT sent as 'Authorization: Bearer' when the gateway requires credentials (default $FLINT_TOKEN)")
}

func (c *clientFlags) registerOutput(fs *flag.FlagSet, what string) {
	fs.StringVar(&c.Output, "o", "text", what+": text or json")
}

func (c *clientFlags) checkOutput() error {
	if c.Output != "text" && c.Output != "json" {
		return fmt.Errorf("-o %q: use text or json", c.Output)
	}
	return nil
}

func (c *clientFlags) client() *gatewayClient {
	base, token := c.Gateway, c.Token
	if base == "" {
		base = os.Getenv("FLINT_GATEWAY")
	}
	if base == "" {
		base = defaultGateway
	}
	if token == "" {
		token = os.Getenv("FLINT_TOKEN")
	}
	return &gatewayClient{base: strings.TrimRight(base, "/"), token: token, http: &http.Client{}}
}

// gatewayClient talks to a gateway's admin API.
type gatewayClient struct {
	base  string
	token string
	http  *http.Client
}

var _ agentReader = (*gatewayClient)(nil)

func (c *gatewayClient) List(ctx context.Context) ([]gateway.AgentSummary, error) {
	var out []gateway.AgentSummary
	if err := c.getJSON(ctx, "/v1/agents", &out); err != nil {
		return nil, err
	}
	return out, nil
}

func (c *gatewayClient) Describe(ctx context.Context, key platform.AgentKey) (*gateway.AgentDetail, error) {
	var out gateway.AgentDetail
	if err := c.getJSON(ctx, gateway.DescribePath+key.Namespace+"/"+key.Name, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// check says what to fix in a gateway URL that is not one (a missing
// scheme, most often: -gateway 127.0.0.1:8080).
func (c *gatewayClient) check() error {
	u, err := url.Parse(c.base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("gateway URL %q: give a URL such as http://%s (-gateway or FLINT_GATEWAY)", c.base, strings.TrimPrefix(strings.TrimPrefix(c.base, "//"), "http:"))
	}
	return nil
}

// newRequest builds a request to the gateway with the credentials set.
func (c *gatewayClient) newRequest(ctx context.Context, method, path string, body io.Reader) (*http.Request, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, fmt.Errorf("gateway URL %q: %w", c.base, err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	return req, nil
}

// do sends req, turning a connection failure into advice.
func (c *gatewayClient) do(req *http.Request) (*http.Response, error) {
	res, err := c.http.Do(req)
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) {
			return nil, fmt.Errorf("cannot reach the gateway at %s: is `flint up` running? (point -gateway or FLINT_GATEWAY at it)", c.base)
		}
		return nil, fmt.Errorf("gateway %s: %w", c.base, err)
	}
	return res, nil
}

func (c *gatewayClient) getJSON(ctx context.Context, path string, into any) error {
	req, err := c.newRequest(ctx, http.MethodGet, path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	res, err := c.do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		e := readGatewayError(res)
		switch {
		case res.StatusCode == http.StatusUnauthorized:
			return errors.New("the gateway requires credentials: pass -token or set FLINT_TOKEN")
		case e.Reason == "AgentNotFound":
			return errAgentNotFound
		case e.Reason == "NotFound":
			return fmt.Errorf("the gateway at %s has no %s: is it an older Flint?", c.base, path)
		}
		return fmt.Errorf("gateway %s%s: %s", c.base, path, e.describe(res.Status))
	}
	if err := json.NewDecoder(res.Body).Decode(into); err != nil {
		return fmt.Errorf("gateway %s%s: reading the answer: %w", c.base, path, err)
	}
	return nil
}

// gatewayError is the JSON the gateway (and the sidecar) answer errors with.
type gatewayError struct {
	Error             string  `json:"error"`
	Reason            string  `json:"reason"`
	WaitedSeconds     float64 `json:"waitedSeconds"`
	RetryAfterSeconds int     `json:"retryAfterSeconds"`
}

// readGatewayError decodes an error body if it is one (at most 64 KiB read).
func readGatewayError(res *http.Response) gatewayError {
	var e gatewayError
	_ = json.NewDecoder(io.LimitReader(res.Body, 64<<10)).Decode(&e)
	return e
}

func parseGatewayError(body []byte) (gatewayError, bool) {
	var e gatewayError
	if err := json.Unmarshal(body, &e); err != nil || e.Reason == "" || e.Error == "" {
		return gatewayError{}, false
	}
	return e, true
}

func (e gatewayError) describe(status string) string {
	if e.Reason == "" {
		return status
	}
	s := status + " " + e.Reason + ": " + e.Error
	if e.RetryAfterSeconds > 0 {
		s += fmt.Sprintf(" (retry after %ds)", e.RetryAfterSeconds)
	}
	return s
}

// parseAgentName accepts NAME (in namespace) or NAMESPACE/NAME.
func parseAgentName(arg, namespace string) (platform.AgentKey, error) {
	ns, name, ok := strings.Cut(arg, "/")
	if !ok {
		ns, name = namespace, arg
	}
	if ns == "" || name == "" || strings.Contains(name, "/") {
		return platform.AgentKey{}, fmt.Errorf("agent %q: give NAME or NAMESPACE/NAME", arg)
	}
	return platform.AgentKey{Namespace: ns, Name: name}, nil
}

// routePath is the gateway path that invokes key's agent at rest (empty or
// starting with "/"), under the gateway's one declaration of the route.
func routePath(key platform.AgentKey, rest string) string {
	return gateway.RoutePrefix + key.Namespace + "/" + key.Name + rest
}

// parseWithArgs parses flags that may come before or after the positional
// arguments (flint invoke echo -d hi), which the flag package alone stops
// at, and returns the positional arguments.
func parseWithArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, errUsage
		}
		if fs.NArg() == 0 {
			return positional, nil
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// oneAgentArg parses a command's flags and its one NAME argument.
func oneAgentArg(fs *flag.FlagSet, args []string, namespace *string) (platform.AgentKey, error) {
	pos, err := parseWithArgs(fs, args)
	if err != nil {
		return platform.AgentKey{}, err
	}
	if len(pos) != 1 {
		fmt.Fprintf(fs.Output(), "give exactly one agent name (got %d)\n", len(pos))
		fs.Usage()
		return platform.AgentKey{}, errUsage
	}
	return parseAgentName(pos[0], *namespace)
}
