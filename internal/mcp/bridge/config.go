package bridge

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"
)

// shutdownMargin is kept free inside the grace period for what follows the
// children's shutdown: the last log lines and the exit itself.
const shutdownMargin = time.Second

// Config configures the bridge; DefaultConfig has the defaults.
type Config struct {
	// Listen is the bridge's HTTP address.
	Listen string
	// Path is the MCP endpoint; /healthz is served beside it.
	Path string
	// MaxSessions caps concurrent sessions, and so live child processes;
	// at the cap a new session evicts the one idle the longest, and when
	// every one is busy initialize gets 503 + Retry-After (capacity.go).
	MaxSessions int
	// AllowedHosts are accepted in Host and Origin besides loopback names
	// and -listen's host (guard.go).
	AllowedHosts []string
	// SessionIdleTimeout ends a session (and stops its child) that has had
	// no request for this long: clients do not always end sessions.
	SessionIdleTimeout time.Duration
	// StartTimeout bounds the readiness probe: starting a child and
	// completing the MCP initialize handshake with it.
	StartTimeout time.Duration
	// GracePeriod is the time from SIGTERM to a forced kill (Kubernetes'
	// terminationGracePeriodSeconds, or the local runtime's grace period).
	// Draining and stopping children must fit inside it.
	GracePeriod time.Duration
	// DrainTimeout is how long calls in flight get to finish after SIGTERM
	// before they are cut. 0 derives it: what the grace period leaves after
	// stopping children and the margin.
	DrainTimeout time.Duration
	// ChildStopWait is each wait of a child's shutdown, which follows the
	// spec: close stdin, wait; SIGTERM, wait; SIGKILL.
	ChildStopWait time.Duration
}

// DefaultConfig returns the defaults. An empty Listen means 127.0.0.1:$PORT
// (listenAddr), so -h shows the rule rather than this run's value.
func DefaultConfig() Config {
	return Config{
		Path:               "/mcp",
		MaxSessions:        16,
		SessionIdleTimeout: 5 * time.Minute,
		StartTimeout:       10 * time.Second,
		GracePeriod:        30 * time.Second,
		ChildStopWait:      2 * time.Second,
	}
}

// RegisterFlags binds the configuration to flags.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Listen, "listen", c.Listen, "address to serve streamable HTTP on (default 127.0.0.1:$PORT, or 127.0.0.1:8080 without PORT)")
	fs.StringVar(&c.Path, "path", c.Path, "path of the MCP endpoint (/healthz is readiness)")
	fs.IntVar(&c.MaxSessions, "max-sessions", c.MaxSessions, "most sessions at once, each one live child process; at the cap a new session evicts the longest idle one, and initialize gets 503 when all are busy")
	c.registerGuardFlags(fs)
	fs.DurationVar(&c.SessionIdleTimeout, "session-idle-timeout", c.SessionIdleTimeout, "end a session, and stop its child, after this long without a request")
	fs.DurationVar(&c.StartTimeout, "start-timeout", c.StartTimeout, "time the readiness probe gives a child to start and answer initialize")
	fs.DurationVar(&c.GracePeriod, "grace-period", c.GracePeriod, "time from SIGTERM to a forced kill; draining and stopping children fit inside it")
	fs.DurationVar(&c.DrainTimeout, "drain-timeout", c.DrainTimeout, "time calls in flight get to finish after SIGTERM (0: what -grace-period leaves after stopping children)")
	fs.DurationVar(&c.ChildStopWait, "child-stop-wait", c.ChildStopWait, "on stopping a child: wait this long after closing its stdin, and again after SIGTERM, before SIGKILL")
}

// Validate reports configuration problems, saying what to fix.
func (c *Config) Validate() error {
	var errs []error
	if !strings.HasPrefix(c.Path, "/") || c.Path == "/healthz" {
		errs = append(errs, fmt.Errorf("-path %q must start with / and not be /healthz", c.Path))
	}
	if c.MaxSessions < 1 {
		errs = append(errs, fmt.Errorf("-max-sessions is %d: it must be at least 1", c.MaxSessions))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"-session-idle-timeout", c.SessionIdleTimeout}, {"-start-timeout", c.StartTimeout}, {"-grace-period", c.GracePeriod}, {"-child-stop-wait", c.ChildStopWait}} {
		if d.v <= 0 {
			errs = append(errs, fmt.Errorf("%s is %s: it must be positive", d.name, d.v))
		}
	}
	if c.DrainTimeout < 0 {
		errs = append(errs, fmt.Errorf("-drain-timeout is %s: it must not be negative", c.DrainTimeout))
	}
	if len(errs) == 0 && c.drainTimeout() <= 0 {
		errs = append(errs, fmt.Errorf("-grace-period %s leaves no time to drain calls: it must exceed -drain-timeout + 2 x -child-stop-wait (%s) + %s",
			c.GracePeriod, 2*c.ChildStopWait, shutdownMargin))
	}
	return errors.Join(errs...)
}

// listenAddr is -listen, or 127.0.0.1:$PORT (8080 without PORT).
func (c *Config) listenAddr() string {
	if c.Listen != "" {
		return c.Listen
	}
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	return "127.0.0.1:" + port
}

// drainTimeout is the effective drain timeout: as configured, and never so
// long that stopping children would overrun the grace period.
func (c *Config) drainTimeout() time.Duration {
	left := c.GracePeriod - c.childrenBudget() - shutdownMargin
	if c.DrainTimeout > 0 && c.DrainTimeout <= left {
		return c.DrainTimeout
	}
	if c.DrainTimeout > left {
		return 0 // Validate says the sum does not fit
	}
	return left
}

// childrenBudget is the longest stopping children may take: they stop in
// parallel, each waiting at most twice before SIGKILL.
func (c *Config) childrenBudget() time.Duration { return 2 * c.ChildStopWait }
