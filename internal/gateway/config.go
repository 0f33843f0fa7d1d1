package gateway

import (
	"errors"
	"flag"
	"fmt"
	"net/url"
	"runtime"
	"time"

	"github.com/flint-dev/flint/internal/bodyrate"
)

// Config is the gateway's configuration; every default is documented in
// docs/configuration.md.
type Config struct {
	// Addr is where the gateway listens for invocations.
	Addr string
	// PublicURL is the gateway's URL as clients reach it; it appears in
	// agent URLs and rewritten A2A agent cards. Defaults to http://Addr.
	PublicURL string
	// AllowedHosts are accepted in Host and Origin besides loopback names
	// and the gateway's own; see hostguard.go.
	AllowedHosts []string
	// MaxHeld bounds the requests held per agent (cold start or every
	// replica full); beyond it the gateway answers 503 at once, so a burst
	// cannot exhaust memory.
	MaxHeld int
	// CapacityHold is how long a request waits for a free slot when every
	// ready replica is full, before 503 + Retry-After.
	CapacityHold time.Duration
	// RetryAfter is the Retry-After the gateway sends with its own 503s.
	RetryAfter time.Duration
	// FullBackoff keeps a replica that refused a request for capacity out of
	// picks for this long (another gateway may be filling it).
	FullBackoff time.Duration
	// DialTimeout bounds connecting to a replica's sidecar.
	DialTimeout time.Duration
	// UpstreamCAFile holds PEM certificates trusted, besides the system's
	// roots, for sidecars that serve TLS.
	UpstreamCAFile string
	// ReadHeaderTimeout bounds reading a client's request headers (slowloris).
	ReadHeaderTimeout time.Duration
	// IdleTimeout closes idle client keep-alive connections.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds a client's request headers.
	MaxHeaderBytes int
	// MaxBodyBytes bounds a request body; larger ones get 413. 0 = no limit.
	MaxBodyBytes int64
	// EventLoops, above 0, relays plain calls on that many epoll event
	// loops instead of a goroutine per connection (issue 19). 0: off.
	EventLoops int
	// SidecarToken is sent to every sidecar in wire.HeaderGatewayToken, for
	// sidecars that refuse traffic bypassing the gateway.
	SidecarToken string
	// SidecarTokenFile, when set, holds that token instead, one per line:
	// the first is sent, and the file is followed (sidecar_token.go).
	SidecarTokenFile string
	// Auth turns on authentication of invocations.
	Auth AuthConfig
	// MCP tunes MCP session routing and event streams (mcp_config.go).
	MCP MCPConfig
	// ReplayBodyLimit is how much of a request body is kept so the request
	// can be retried on another replica; larger bodies are streamed and not
	// retried once sent.
	ReplayBodyLimit int
	// Retry bounds the attempts resent to another replica (retry.go).
	Retry RetryBudget
	// BodyRate is the slowest a client may send a request body (after a
	// grace period) before 408; a zero MinRate turns the check off.
	BodyRate bodyrate.Config
}

// DefaultConfig returns the gateway's defaults.
func DefaultConfig() Config {
	return Config{
		Addr:              "127.0.0.1:8080",
		MaxHeld:           1000,
		CapacityHold:      5 * time.Second,
		RetryAfter:        time.Second,
		FullBackoff:       100 * time.Millisecond,
		DialTimeout:       2 * time.Second,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    1 << 20,
		MaxBodyBytes:      32 << 20,
		ReplayBodyLimit:   64 << 10,
		Retry:             defaultRetryBudget(),
		// As the sidecar's (proxy.DefaultBodyRate): Kestrel's minimum.
		BodyRate: bodyrate.Config{MinRate: 240, Grace: 5 * time.Second},
		MCP:      defaultMCPConfig(),
		// A loop per core the process may use (GOMAXPROCS follows a
		// container's CPU limit), as nginx's worker_processes auto.
		EventLoops: runtime.GOMAXPROCS(0),
	}
}

// RegisterFlags binds the configuration to command-line flags.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Addr, "addr", c.Addr, "address the gateway listens on for invocations")
	fs.StringVar(&c.PublicURL, "public-url", c.PublicURL, "the gateway's URL as clients reach it (default http://ADDR)")
	c.registerHostFlags(fs)
	fs.IntVar(&c.MaxHeld, "max-held", c.MaxHeld, "requests held per agent while it starts or every replica is full; beyond this the gateway answers 503")
	fs.DurationVar(&c.CapacityHold, "capacity-hold", c.CapacityHold, "how long a request waits for a free slot when every replica is full, before 503 + Retry-After")
	fs.DurationVar(&c.RetryAfter, "retry-after", c.RetryAfter, "Retry-After sent with the gateway's 503 answers (rounded up to whole seconds)")
	fs.DurationVar(&c.FullBackoff, "full-backoff", c.FullBackoff, "how long a replica that refused a request for capacity is skipped")
	fs.DurationVar(&c.DialTimeout, "dial-timeout", c.DialTimeout, "timeout for connecting to a replica")
	fs.StringVar(&c.UpstreamCAFile, "upstream-ca-file", c.UpstreamCAFile, "PEM file of CA certificates trusted, besides the system's, for sidecars serving TLS")
	fs.DurationVar(&c.ReadHeaderTimeout, "read-header-timeout", c.ReadHeaderTimeout, "time allowed to read a request's headers")
	fs.DurationVar(&c.IdleTimeout, "idle-timeout", c.IdleTimeout, "idle keep-alive connections from clients are closed after this long")
	fs.IntVar(&c.MaxHeaderBytes, "max-header-bytes", c.MaxHeaderBytes, "largest request header block accepted")
	fs.Int64Var(&c.MaxBodyBytes, "max-body-bytes", c.MaxBodyBytes, "largest request body accepted (413 beyond it); 0 = no limit")
	fs.IntVar(&c.EventLoops, "event-loops", c.EventLoops, "relay plain calls on this many epoll event loops instead of a goroutine per connection (default: one per core); off with tracing (0 = off)")
	c.Auth.RegisterFlags(fs)
	fs.StringVar(&c.SidecarTokenFile, "sidecar-token-file", c.SidecarTokenFile, "file with a secret sent to every sidecar, whose -gateway-token-file holds the same; lets sidecars refuse traffic that bypasses the gateway. "+
		"Several lines during a rotation: the first is sent; the file is re-read every 10 s")
	c.MCP.RegisterFlags(fs)
	fs.IntVar(&c.ReplayBodyLimit, "replay-body-limit", c.ReplayBodyLimit, "bytes of a request body kept so it can be retried on another replica")
	fs.Int64Var(&c.BodyRate.MinRate, "min-body-rate", c.BodyRate.MinRate, "slowest average rate, in bytes/s, a request body may arrive at after -body-grace; slower gets 408 (0 = no limit)")
	fs.DurationVar(&c.BodyRate.Grace, "body-grace", c.BodyRate.Grace, "time a request body may take before -min-body-rate applies")
	fs.IntVar(&c.Retry.PerRequest, "max-retries", c.Retry.PerRequest, "most times one request is resent to another replica after a refusal the agent never saw")
	fs.Float64Var(&c.Retry.Fraction, "retry-budget", c.Retry.Fraction, "fraction of an agent's requests in progress that may be retrying at once")
	fs.IntVar(&c.Retry.Min, "retry-budget-min", c.Retry.Min, "retrying requests allowed per agent whatever -retry-budget says")
}

// Validate reports the first configuration problem, saying what to fix.
func (c *Config) Validate() error {
	var errs []error
	if c.Addr == "" {
		errs = append(errs, errors.New("-addr is empty: give an address such as 127.0.0.1:8080"))
	}
	if c.PublicURL != "" {
		if u, err := url.Parse(c.PublicURL); err != nil || u.Scheme == "" || u.Host == "" {
			errs = append(errs, fmt.Errorf("-public-url %q is not an absolute URL such as https://flint.example.com", c.PublicURL))
		}
	}
	if c.MaxHeld < 1 {
		errs = append(errs, fmt.Errorf("-max-held is %d: it must be at least 1", c.MaxHeld))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"-capacity-hold", c.CapacityHold}, {"-retry-after", c.RetryAfter}, {"-dial-timeout", c.DialTimeout}, {"-read-header-timeout", c.ReadHeaderTimeout}} {
		if d.v <= 0 {
			errs = append(errs, fmt.Errorf("%s is %s: it must be positive", d.name, d.v))
		}
	}
	if c.EventLoops < 0 {
		errs = append(errs, fmt.Errorf("-event-loops is %d: it must be 0 (off) or more", c.EventLoops))
	}
	if c.FullBackoff < 0 || c.IdleTimeout < 0 || c.MaxHeaderBytes < 0 || c.ReplayBodyLimit < 0 || c.MaxBodyBytes < 0 {
		errs = append(errs, errors.New("-full-backoff, -idle-timeout, -max-header-bytes, -max-body-bytes and -replay-body-limit must not be negative"))
	}
	if c.Retry.PerRequest < 0 || c.Retry.Min < 0 || c.Retry.Fraction < 0 || c.Retry.Fraction > 1 {
		errs = append(errs, fmt.Errorf("-max-retries (%d) and -retry-budget-min (%d) must not be negative, and -retry-budget (%g) must be within 0..1", c.Retry.PerRequest, c.Retry.Min, c.Retry.Fraction))
	}
	errs = append(errs, c.BodyRate.Validate(""))
	errs = append(errs, c.MCP.validate())
	return errors.Join(errs...)
}

// publicURL is the configured public URL or one derived from the address.
func (c *Config) publicURL() string {
	if c.PublicURL != "" {
		return c.PublicURL
	}
	return "http://" + c.Addr
}
