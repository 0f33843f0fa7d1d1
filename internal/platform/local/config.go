package local

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"
)

// Config tunes the local runtime; docs/configuration.md lists the defaults.
type Config struct {
	// GracePeriod is how long a stopping agent process gets between
	// SIGTERM and SIGKILL.
	GracePeriod time.Duration
	// DrainTimeout bounds how long a stopping replica's sidecar waits for
	// in-flight requests to finish.
	DrainTimeout time.Duration
	// QueueDepth is each sidecar's bounded queue of requests waiting for a slot.
	QueueDepth int
	// SessionDrain is how long a stopping replica of an MCP agent keeps
	// serving the sessions it holds (it gets no new ones) before it stops
	// accepting and their clients move to other replicas (mcp.go).
	SessionDrain time.Duration
	// BridgeCommand runs `flint stdio-bridge`, in front of MCP agents whose
	// command is a stdio server. Defaults to this executable.
	BridgeCommand []string
	// BridgeAllowedHosts is the bridge's -allowed-hosts: the names the
	// gateway accepts, since Host reaches the bridge unchanged.
	BridgeAllowedHosts []string
	// Supervisor runs `flint supervise-agent`, which leads each agent
	// process's group and kills it when Flint dies (supervisor.go).
	// Defaults to this executable; nil runs agents unsupervised.
	Supervisor []string
	// RestartBackoff is the first delay before restarting a crashed
	// process; it doubles up to MaxRestartBackoff.
	RestartBackoff    time.Duration
	MaxRestartBackoff time.Duration
	// StableRun is how long a process must run for its backoff to reset.
	StableRun time.Duration
	// Output receives the agents' prefixed stdout and stderr.
	Output io.Writer
}

// DefaultConfig returns the local runtime's defaults.
func DefaultConfig() Config {
	return Config{
		GracePeriod:       10 * time.Second,
		DrainTimeout:      30 * time.Second,
		RestartBackoff:    500 * time.Millisecond,
		MaxRestartBackoff: 30 * time.Second,
		StableRun:         10 * time.Second,
		SessionDrain:      5 * time.Second,
		BridgeCommand:     defaultBridgeCommand(),
		Supervisor:        defaultSupervisorCommand(),
		Output:            os.Stderr,
	}
}

// RegisterFlags binds the configuration to command-line flags.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.DurationVar(&c.GracePeriod, "grace-period", c.GracePeriod, "time a stopping agent process gets between SIGTERM and SIGKILL")
	fs.DurationVar(&c.DrainTimeout, "drain-timeout", c.DrainTimeout, "time a stopping replica gets to finish its in-flight requests")
	fs.IntVar(&c.QueueDepth, "queue-depth", c.QueueDepth, "requests each replica's sidecar queues when all its slots are busy")
	fs.DurationVar(&c.SessionDrain, "session-drain", c.SessionDrain, "time a stopping replica of an MCP agent keeps serving the sessions it holds before their clients move elsewhere")
	fs.DurationVar(&c.RestartBackoff, "restart-backoff", c.RestartBackoff, "first delay before restarting a crashed agent process (doubles each crash)")
	fs.DurationVar(&c.MaxRestartBackoff, "max-restart-backoff", c.MaxRestartBackoff, "longest delay between restarts of a crashing agent process")
}

// Validate reports configuration problems, saying what to fix.
func (c *Config) Validate() error {
	var errs []error
	if c.GracePeriod <= 0 {
		errs = append(errs, fmt.Errorf("-grace-period is %s: it must be positive", c.GracePeriod))
	}
	if c.DrainTimeout <= 0 {
		errs = append(errs, fmt.Errorf("-drain-timeout is %s: it must be positive", c.DrainTimeout))
	}
	if c.SessionDrain < 0 {
		errs = append(errs, fmt.Errorf("-session-drain is %s: it must not be negative", c.SessionDrain))
	}
	if c.QueueDepth < 0 {
		errs = append(errs, fmt.Errorf("-queue-depth is %d: it must not be negative", c.QueueDepth))
	}
	if c.RestartBackoff <= 0 || c.MaxRestartBackoff < c.RestartBackoff {
		errs = append(errs, fmt.Errorf("-restart-backoff (%s) must be positive and at most -max-restart-backoff (%s)", c.RestartBackoff, c.MaxRestartBackoff))
	}
	return errors.Join(errs...)
}
