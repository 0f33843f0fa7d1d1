package controller

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/flint-dev/flint/api/v1alpha1"
	"github.com/flint-dev/flint/internal/reload"
	"github.com/flint-dev/flint/internal/secret"
	"github.com/flint-dev/flint/internal/wire"
)

// Defaults of Config.
const (
	DefaultSidecarRepository = "ghcr.io/flint-dev/flint"
	// DefaultShutdownMargin is the grace period's room beyond the drain: the
	// sidecar's own close-down (about 1s) plus the agent's exit after its
	// preStop hook returns.
	DefaultShutdownMargin = 5 * time.Second
	// MinShutdownMargin leaves the sidecar its close-down time and the agent
	// at least a second to exit cleanly.
	MinShutdownMargin              = 2 * time.Second
	DefaultMaxConcurrentReconciles = 4
	// DefaultMaxTerminationGracePeriod caps the grace period an agent's
	// request timeout asks for: a node drain or rollout waits at most this
	// long for a replica.
	DefaultMaxTerminationGracePeriod = 15 * time.Minute
	defaultSidecarImageTag           = "latest"
	gatewayAgentsPathPrefix          = "/v1/agents/"
)

// Config is what the manager puts into every agent's pods and status.
type Config struct {
	// SidecarImage is the image of the `flint proxy` sidecar; its
	// entrypoint must be the flint binary (the manager passes `proxy ...`
	// as arguments).
	SidecarImage string
	// FlintBinary is the flint binary's path in SidecarImage, which the
	// stdio bridge's installer runs.
	FlintBinary string
	// GatewayURL is the gateway's public base URL; status.url is
	// GatewayURL/v1/agents/{namespace}/{name}/. Empty leaves status.url unset.
	GatewayURL string
	// DrainDelay is how long a stopping replica keeps serving after it
	// fails readiness, while endpoint removal reaches every gateway.
	DrainDelay time.Duration
	// DrainTimeout is the least time in-flight requests then get to finish;
	// an agent whose timeouts.request is longer gets that instead.
	DrainTimeout time.Duration
	// ShutdownMargin is added to the drain delay and timeout to make the
	// pods' terminationGracePeriodSeconds.
	ShutdownMargin time.Duration
	// MaxTerminationGracePeriod caps each agent's grace period; an agent
	// whose request timeout does not fit gets a shorter drain, and its
	// status says so.
	MaxTerminationGracePeriod time.Duration
	// SidecarQueueDepth is how many requests each sidecar queues when all
	// its slots are busy (only for agents with a concurrency cap).
	SidecarQueueDepth int
	// GatewayTokenFile holds the token the gateways present to sidecars
	// (their -sidecar-token-file). Set, every sidecar requires it and
	// answers 403 to requests that bypass the gateway; NewReconciler reads
	// it and follows it (gatewaytoken.go).
	GatewayTokenFile string
	// gatewayToken is the token file's content as sidecars get it (one
	// token per line, the first the gateways send); nil for none.
	gatewayToken func() string
	// MaxConcurrentReconciles is how many Agents are reconciled in parallel.
	MaxConcurrentReconciles int
	// SidecarTLS configures the sidecars' serving certificates (sidecartls.go).
	SidecarTLS SidecarTLSConfig
}

// DefaultConfig returns the defaults; version tags the sidecar image so a
// manager runs sidecars of its own release ("dev" builds use :latest).
func DefaultConfig(version string) Config {
	tag := version
	if tag == "" || tag == "dev" {
		tag = defaultSidecarImageTag
	}
	return Config{
		SidecarImage:              DefaultSidecarRepository + ":" + tag,
		FlintBinary:               DefaultFlintBinary,
		DrainDelay:                wire.DefaultDrainDelay,
		DrainTimeout:              wire.DefaultDrainTimeout,
		ShutdownMargin:            DefaultShutdownMargin,
		MaxTerminationGracePeriod: DefaultMaxTerminationGracePeriod,
		MaxConcurrentReconciles:   DefaultMaxConcurrentReconciles,
		SidecarTLS:                DefaultSidecarTLSConfig(),
	}
}

// RegisterFlags binds c to flags on fs; c's current values are the defaults.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.SidecarImage, "sidecar-image", c.SidecarImage,
		"`image` of the flint proxy sidecar in every agent pod (its entrypoint must be the flint binary)")
	fs.StringVar(&c.FlintBinary, "flint-binary", c.FlintBinary,
		"`path` of the flint binary in the -sidecar-image, which stdio MCP agents' init container copies into their pods")
	fs.StringVar(&c.GatewayURL, "gateway-url", c.GatewayURL,
		"public base `URL` of the gateway, for agents' status.url (empty: status.url is not set)")
	fs.DurationVar(&c.DrainDelay, "drain-delay", c.DrainDelay,
		"how long a stopping replica keeps serving after failing readiness, so endpoint removal reaches every gateway")
	fs.DurationVar(&c.DrainTimeout, "drain-timeout", c.DrainTimeout,
		"after -drain-delay, the least time a stopping replica's in-flight requests and streams get to finish (an agent's longer timeouts.request wins)")
	fs.DurationVar(&c.ShutdownMargin, "shutdown-margin", c.ShutdownMargin,
		"added to the drain delay and timeout to make pods' terminationGracePeriodSeconds: the sidecar's close-down and the agent's exit")
	fs.DurationVar(&c.MaxTerminationGracePeriod, "max-termination-grace-period", c.MaxTerminationGracePeriod,
		"cap of an agent's terminationGracePeriodSeconds (drain delay + its request timeout + margin); longer requests are cut when a replica stops")
	fs.StringVar(&c.GatewayTokenFile, "gateway-token-file", c.GatewayTokenFile,
		"`file` with the token the gateways present to sidecars (their -sidecar-token-file): copied into a Secret per agent and required by every sidecar, which answers 403 to requests that bypass the gateway (empty: not required)")
	fs.IntVar(&c.SidecarQueueDepth, "sidecar-queue-depth", c.SidecarQueueDepth,
		"requests each sidecar queues when all its slots are busy (agents with a concurrency cap only)")
	fs.IntVar(&c.MaxConcurrentReconciles, "max-concurrent-reconciles", c.MaxConcurrentReconciles,
		"Agents reconciled in parallel")
	c.SidecarTLS.RegisterFlags(fs)
}

// Validate reports every problem, naming the flag to change.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if strings.TrimSpace(c.SidecarImage) == "" {
		bad("-sidecar-image is empty: set the image of the flint proxy sidecar (e.g. %s:v1.0.0)", DefaultSidecarRepository)
	}
	if !strings.HasPrefix(c.FlintBinary, "/") {
		bad("-flint-binary=%q must be an absolute path (e.g. %s)", c.FlintBinary, DefaultFlintBinary)
	}
	if c.GatewayURL != "" {
		if u, err := url.Parse(c.GatewayURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("-gateway-url=%q is not an absolute http(s) URL (e.g. https://agents.example.com)", c.GatewayURL)
		}
	}
	if c.DrainDelay < 0 {
		bad("-drain-delay=%s must not be negative", c.DrainDelay)
	}
	if c.DrainTimeout <= 0 {
		bad("-drain-timeout=%s must be positive", c.DrainTimeout)
	}
	if c.ShutdownMargin < MinShutdownMargin {
		bad("-shutdown-margin=%s must be at least %s: the sidecar needs about 1s to close down after the drain, and the agent time to exit",
			c.ShutdownMargin, MinShutdownMargin)
	}
	if least := c.DrainDelay + c.DrainTimeout + c.ShutdownMargin; c.MaxTerminationGracePeriod <= 0 || c.MaxTerminationGracePeriod < least {
		bad("-max-termination-grace-period=%s must be at least -drain-delay + -drain-timeout + -shutdown-margin (%s)",
			c.MaxTerminationGracePeriod, least)
	}
	if c.SidecarQueueDepth < 0 {
		bad("-sidecar-queue-depth=%d must not be negative", c.SidecarQueueDepth)
	}
	if c.MaxConcurrentReconciles < 1 {
		bad("-max-concurrent-reconciles=%d must be at least 1", c.MaxConcurrentReconciles)
	}
	errs = append(errs, c.SidecarTLS.validate())
	return errors.Join(errs...)
}

// shutdownBudget is how long one agent's replicas get to stop.
type shutdownBudget struct {
	// DrainTimeout is the sidecar's -drain-timeout: the agent's request
	// timeout, at least Config.DrainTimeout, cut to fit Grace.
	DrainTimeout time.Duration
	// Grace is the pods' terminationGracePeriodSeconds, whole seconds.
	Grace time.Duration
	// Capped says the request timeout did not fit under
	// MaxTerminationGracePeriod.
	Capped bool
}

// shutdownBudget is drain delay + the agent's request timeout (never less
// than -drain-timeout) + margin, rounded up to whole seconds (the field's
// unit) so rounding never eats into the drain, and capped.
func (c Config) shutdownBudget(a *v1alpha1.Agent) shutdownBudget {
	drain := max(c.DrainTimeout, a.Spec.RequestTimeout())
	grace := ceilSecond(c.DrainDelay + drain + c.ShutdownMargin)
	if ceiling := c.MaxTerminationGracePeriod.Truncate(time.Second); ceiling > 0 && grace > ceiling {
		return shutdownBudget{DrainTimeout: ceiling - c.DrainDelay - c.ShutdownMargin, Grace: ceiling, Capped: true}
	}
	return shutdownBudget{DrainTimeout: drain, Grace: grace}
}

func ceilSecond(d time.Duration) time.Duration { return (d + time.Second - 1).Truncate(time.Second) }

// UseGatewayToken sets where the token the gateways present to sidecars
// comes from when it is not -gateway-token-file (the manager's
// -gateway-token-secret, followed through the API); the file, when set,
// wins. tokens is called at every reconcile, so it must be cheap.
func (c *Config) UseGatewayToken(tokens func() secret.Tokens) {
	if c.GatewayTokenFile == "" && tokens != nil {
		c.gatewayToken = func() string { return strings.Join(tokens(), "\n") }
	}
}

// BypassProtected reports whether sidecars get the gateway token
// (-gateway-token-file, or the manager's -gateway-token-secret through
// UseGatewayToken) and so refuse every request that did not pass a gateway.
func (c Config) BypassProtected() bool { return c.GatewayTokenFile != "" || c.gatewayToken != nil }

// LoadGatewayToken reads -gateway-token-file, if set, into c, and follows it.
func (c *Config) LoadGatewayToken(log *slog.Logger) error {
	if c.GatewayTokenFile == "" {
		return nil
	}
	tokens, err := reload.Tokens("gateway token", c.GatewayTokenFile, log)
	if err != nil {
		return fmt.Errorf("-gateway-token-file: %w", err)
	}
	c.gatewayToken = func() string { return strings.Join(tokens.Get(), "\n") }
	return nil
}

// agentURL is where the agent is invoked through the gateway, or "" when
// the gateway's URL is not configured.
func (c Config) agentURL(namespace, name string) string {
	if c.GatewayURL == "" {
		return ""
	}
	return strings.TrimSuffix(c.GatewayURL, "/") + gatewayAgentsPathPrefix + namespace + "/" + name + "/"
}
