package proxy

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"runtime"
	"strings"
	"time"

	"github.com/flint-dev/flint/internal/bodyrate"
	"github.com/flint-dev/flint/internal/wire"
)

// Defaults. Loopback addresses suit local mode; on Kubernetes the manager
// passes ":8012" and ":8022" so the gateway and the kubelet can reach the pod IP.
const (
	DefaultServingAddr           = "127.0.0.1:8012"
	DefaultAdminAddr             = "127.0.0.1:8022"
	DefaultUpstreamAddr          = "127.0.0.1:8080"
	DefaultQueueTimeout          = time.Second
	DefaultRetryAfter            = time.Second
	DefaultProbeInterval         = 50 * time.Millisecond
	DefaultProbeTimeout          = 100 * time.Millisecond
	DefaultProbeRecheckInterval  = time.Second
	DefaultProbeFailureThreshold = 3
	DefaultReadyWait             = 3 * time.Second
	DefaultDrainDelay            = wire.DefaultDrainDelay
	DefaultDrainTimeout          = wire.DefaultDrainTimeout
	DefaultEventStreamGrace      = 2 * time.Second
)

// shutdownMargin is what the sidecar needs after DrainTimeout to cut the
// remaining requests and answer /wait-for-drain; the grace period must leave
// room for it or the kubelet's SIGKILL lands mid-cleanup and logs are lost.
const shutdownMargin = forceCloseGrace + adminShutdownTimeout

// Config configures a Sidecar. Fields whose zero value could not work
// (addresses, intervals, timeouts that must be positive) take their default
// when zero; for the others zero is meaningful, so use DefaultConfig (or
// RegisterFlags) to start from production defaults.
type Config struct {
	// ServingAddr is where proxied traffic arrives. Port 0 picks a free port.
	ServingAddr string
	// AdminAddr serves health, readiness, stats, metrics and drain; never the
	// serving port, so these paths neither shadow the agent's nor leak to callers.
	AdminAddr string
	// UpstreamAddr is the agent's host:port.
	UpstreamAddr string
	// UpstreamH2C speaks cleartext HTTP/2 (prior knowledge) to the agent,
	// for gRPC-style agents. WebSocket upgrades need HTTP/1, so leave it off
	// for agents that use them.
	UpstreamH2C bool
	// EventLoops, above 0, serves plain HTTP/1.1 exchanges on that many
	// epoll event loops instead of a goroutine per connection (issue 19),
	// when UpstreamAddr is an IP address and port. 0: off.
	EventLoops int

	// Concurrency caps in-flight requests; 0 means unlimited.
	Concurrency int
	// QueueDepth is how many requests may wait for a slot when all are busy
	// (0: none; beyond it requests get 503 at once). Needs Concurrency > 0.
	QueueDepth int
	// QueueTimeout is the longest a request waits for a slot before 503.
	// Kept short so the gateway, which sees every replica, decides what
	// happens next. Zero means DefaultQueueTimeout.
	QueueTimeout time.Duration
	// RetryAfter is advertised on 503s, rounded up to whole seconds (min 1).
	// Zero means DefaultRetryAfter.
	RetryAfter time.Duration
	// RequestTimeout bounds the agent's time on one request, counted from
	// when it gets a slot (queueing is bounded separately). 0 = none.
	// Expiry before any response byte gives 504; a stream is ended cleanly.
	RequestTimeout time.Duration
	// BodyRate is the slowest a client may send a request body (after a
	// grace period) before 408; a zero MinRate turns the check off.
	BodyRate bodyrate.Config

	// ProbePath is the agent's HTTP readiness path (2xx/3xx = ready); empty
	// means a TCP connect check.
	ProbePath string
	// ProbeInterval is the start-up probing period, aggressive so a replica
	// is usable well before the kubelet's 1s period. Zero means the default.
	ProbeInterval time.Duration
	// ProbeTimeout bounds one start-up probe; it doubles (up to 1s) after
	// each timeout so a slow probe endpoint still gets through.
	ProbeTimeout time.Duration
	// ProbeRecheckInterval is the probing period once the agent has answered.
	ProbeRecheckInterval time.Duration
	// ProbeFailureThreshold consecutive failed rechecks mark the agent not ready.
	ProbeFailureThreshold int
	// ReadyWait is how long a request arriving while the agent is not ready
	// waits for it before 503; 0 refuses at once.
	ReadyWait time.Duration

	// DrainDelay: after a drain starts, keep serving this long so endpoint
	// removal (asynchronous to SIGTERM) reaches every caller. 0 = no delay.
	DrainDelay time.Duration
	// DrainTimeout: after DrainDelay, how long in-flight requests (streams
	// and WebSockets too) get to finish before they are cut. Zero means the default.
	DrainTimeout time.Duration
	// EventStreamGrace: after DrainDelay, how long an event stream that
	// answers no request in progress (a GET answered with
	// text/event-stream: an MCP session's standalone stream, an
	// EventSource) may stay open before the sidecar ends it between two
	// events, so its client reconnects to another replica instead of
	// holding the drain for DrainTimeout. Requests in progress, POSTs that
	// stream their answer included, keep all of DrainTimeout. Zero ends
	// them as soon as the serving port closes; DrainTimeout or more leaves
	// them to the drain deadline.
	EventStreamGrace time.Duration
	// OnReadyChange, when set, is called (never concurrently) each time
	// Ready changes, for runtimes that embed the sidecar and publish its
	// endpoint. It must not block.
	OnReadyChange func(ready bool)

	// GatewayToken, when set, is required in the wire.HeaderGatewayToken of
	// every request on the serving port; others get 403 (they bypassed the
	// gateway).
	GatewayToken string
	// GatewayTokenFile, when set, holds the accepted tokens instead, one per
	// line (several during a rotation), and is followed (gatewaytoken.go).
	// Set by the -gateway-token-file flag.
	GatewayTokenFile string

	// TLSCertFile and TLSKeyFile, when set, make the serving port speak TLS
	// with this PEM certificate and key to clients that start a handshake,
	// and plain HTTP to the others, so TLS can be turned on and off without
	// a moment where the gateways and replicas disagree (the admin port
	// stays plain HTTP for the kubelet's probes). Both files are read again when they change, so
	// a renewed certificate is served without a restart.
	TLSCertFile, TLSKeyFile string

	// TerminationGracePeriod, when set, is the pod's
	// terminationGracePeriodSeconds; Validate checks the drain fits inside it.
	TerminationGracePeriod time.Duration
}

// DefaultConfig returns the production defaults.
func DefaultConfig() Config {
	return Config{
		ServingAddr:           DefaultServingAddr,
		AdminAddr:             DefaultAdminAddr,
		UpstreamAddr:          DefaultUpstreamAddr,
		QueueTimeout:          DefaultQueueTimeout,
		RetryAfter:            DefaultRetryAfter,
		ProbeInterval:         DefaultProbeInterval,
		ProbeTimeout:          DefaultProbeTimeout,
		ProbeRecheckInterval:  DefaultProbeRecheckInterval,
		ProbeFailureThreshold: DefaultProbeFailureThreshold,
		ReadyWait:             DefaultReadyWait,
		DrainDelay:            DefaultDrainDelay,
		DrainTimeout:          DefaultDrainTimeout,
		EventStreamGrace:      DefaultEventStreamGrace,
		BodyRate:              DefaultBodyRate,
		EventLoops:            DefaultEventLoops(),
	}
}

// DefaultEventLoops is a loop per core the process may use (GOMAXPROCS,
// which follows a container's CPU limit), up to 4: one agent's replica
// rarely needs more.
func DefaultEventLoops() int { return min(runtime.GOMAXPROCS(0), 4) }

// DefaultBodyRate is Kestrel's minimum request body data rate: 240 bytes/s
// after 5 s; a client on any real network sends far faster, while one that
// trickles a body to hold a slot is cut within seconds.
var DefaultBodyRate = bodyrate.Config{MinRate: 240, Grace: 5 * time.Second}

// RegisterFlags binds c to flags on fs, with DefaultConfig's values as defaults.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	d := DefaultConfig()
	fs.StringVar(&c.ServingAddr, "serving-addr", d.ServingAddr,
		"`host:port` for proxied traffic (use :8012 on Kubernetes so the gateway can reach the pod IP; port 0 picks one)")
	fs.StringVar(&c.AdminAddr, "admin-addr", d.AdminAddr,
		"`host:port` for /healthz, /readyz, /stats, /metrics, /drain and /wait-for-drain; must differ from -serving-addr")
	fs.StringVar(&c.UpstreamAddr, "upstream", d.UpstreamAddr,
		"`host:port` of the agent")
	fs.BoolVar(&c.UpstreamH2C, "upstream-h2c", false,
		"speak cleartext HTTP/2 to the agent (gRPC); WebSocket upgrades then cannot pass")
	fs.IntVar(&c.EventLoops, "event-loops", d.EventLoops,
		"serve plain HTTP/1.1 exchanges on this many epoll event loops instead of a goroutine per connection (default: one per core, up to 4); off when -upstream is a host name, and with TLS, tracing or -upstream-h2c (0 = off)")
	fs.IntVar(&c.Concurrency, "concurrency", d.Concurrency,
		"hard cap of in-flight requests to the agent; 0 = unlimited")
	fs.IntVar(&c.QueueDepth, "queue-depth", d.QueueDepth,
		"requests that may wait for a slot when all are busy; more get 503 + Retry-After at once (needs -concurrency > 0)")
	fs.DurationVar(&c.QueueTimeout, "queue-timeout", d.QueueTimeout,
		"longest a request waits for a slot before 503 + Retry-After")
	fs.DurationVar(&c.RetryAfter, "retry-after", d.RetryAfter,
		"Retry-After advertised on 503 responses (whole seconds, at least 1)")
	fs.DurationVar(&c.RequestTimeout, "request-timeout", d.RequestTimeout,
		"longest the agent may take on one request, from when it gets a slot; 504 if no response started, streams end cleanly (0 = none)")
	fs.Int64Var(&c.BodyRate.MinRate, "min-body-rate", d.BodyRate.MinRate,
		"slowest average rate, in bytes/s, a request body may arrive at after -body-grace; slower gets 408 (0 = no limit)")
	fs.DurationVar(&c.BodyRate.Grace, "body-grace", d.BodyRate.Grace,
		"time a request body may take before -min-body-rate applies")
	fs.StringVar(&c.ProbePath, "probe-path", d.ProbePath,
		"HTTP `path` the agent answers with 2xx/3xx when ready; empty = TCP connect check")
	fs.DurationVar(&c.ProbeInterval, "probe-interval", d.ProbeInterval,
		"probing period until the agent first answers")
	fs.DurationVar(&c.ProbeTimeout, "probe-timeout", d.ProbeTimeout,
		"timeout of one start-up probe; doubles after each timeout, up to 1s")
	fs.DurationVar(&c.ProbeRecheckInterval, "probe-recheck-interval", d.ProbeRecheckInterval,
		"probing period once the agent has answered")
	fs.IntVar(&c.ProbeFailureThreshold, "probe-failure-threshold", d.ProbeFailureThreshold,
		"consecutive failed rechecks after which the agent counts as not ready")
	fs.DurationVar(&c.ReadyWait, "ready-wait", d.ReadyWait,
		"how long a request arriving while the agent is not ready waits for it before 503 (0 = refuse at once)")
	fs.DurationVar(&c.DrainDelay, "drain-delay", d.DrainDelay,
		"after SIGTERM or POST /drain, keep serving this long (readiness already failing) so endpoint removal propagates")
	fs.DurationVar(&c.DrainTimeout, "drain-timeout", d.DrainTimeout,
		"after -drain-delay, how long in-flight requests, streams and WebSockets get to finish before they are cut")
	fs.DurationVar(&c.EventStreamGrace, "event-stream-grace", d.EventStreamGrace,
		"after -drain-delay, how long an open event stream answering no request in progress (a GET of text/event-stream: an MCP session's standalone stream) may go on before it is ended between two events so its client reconnects elsewhere; POSTs streaming their answer keep all of -drain-timeout")
	fs.StringVar(&c.GatewayTokenFile, "gateway-token-file", d.GatewayTokenFile,
		"`file` with the secret the gateway sends (its -sidecar-token-file); requests without it are refused with 403. "+
			"One per line during a rotation, each accepted; the file is re-read every 10 s")
	fs.StringVar(&c.TLSCertFile, "tls-cert-file", d.TLSCertFile,
		"PEM `file` of the serving port's TLS certificate (chain); set, the serving port speaks TLS to clients that start a handshake (plain HTTP to the others), and the file is reloaded when it changes (needs -tls-key-file)")
	fs.StringVar(&c.TLSKeyFile, "tls-key-file", d.TLSKeyFile,
		"PEM `file` of the private key of -tls-cert-file")
	fs.DurationVar(&c.TerminationGracePeriod, "termination-grace-period", d.TerminationGracePeriod,
		"the pod's terminationGracePeriodSeconds; when set, the drain must fit inside it (0 = unchecked)")
}

// withDefaults fills the fields whose zero value means "default".
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	setDefault(&c.ServingAddr, d.ServingAddr)
	setDefault(&c.AdminAddr, d.AdminAddr)
	setDefault(&c.UpstreamAddr, d.UpstreamAddr)
	setDefault(&c.QueueTimeout, d.QueueTimeout)
	setDefault(&c.RetryAfter, d.RetryAfter)
	setDefault(&c.ProbeInterval, d.ProbeInterval)
	setDefault(&c.ProbeTimeout, d.ProbeTimeout)
	setDefault(&c.ProbeRecheckInterval, d.ProbeRecheckInterval)
	setDefault(&c.ProbeFailureThreshold, d.ProbeFailureThreshold)
	setDefault(&c.DrainTimeout, d.DrainTimeout)
	return c
}

func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// Validate reports every problem at once, each naming the flag to change.
// Zero values that mean "default" are accepted.
func (c *Config) Validate() error {
	e := c.withDefaults()
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	for _, a := range []struct{ flag, addr string }{
		{"-serving-addr", e.ServingAddr}, {"-admin-addr", e.AdminAddr}, {"-upstream", e.UpstreamAddr},
	} {
		if _, port, err := net.SplitHostPort(a.addr); err != nil || port == "" {
			bad("%s=%q is not a host:port (e.g. 127.0.0.1:8012 or :8012)", a.flag, a.addr)
		}
	}
	if sameFixedAddr(e.ServingAddr, e.AdminAddr) {
		bad("-admin-addr=%q must differ from -serving-addr: admin paths must never be reachable on the serving port", e.AdminAddr)
	}
	if e.EventLoops < 0 {
		bad("-event-loops=%d must be 0 (off) or more", e.EventLoops)
	}
	if e.Concurrency < 0 {
		bad("-concurrency=%d must be 0 (unlimited) or more", e.Concurrency)
	}
	if e.QueueDepth < 0 {
		bad("-queue-depth=%d must be 0 or more", e.QueueDepth)
	}
	if e.QueueDepth > 0 && e.Concurrency == 0 {
		bad("-queue-depth=%d needs -concurrency > 0: with unlimited concurrency no request ever waits for a slot", e.QueueDepth)
	}
	for _, d := range []struct {
		flag string
		v    time.Duration
	}{
		{"-queue-timeout", e.QueueTimeout}, {"-retry-after", e.RetryAfter}, {"-request-timeout", e.RequestTimeout},
		{"-probe-interval", e.ProbeInterval}, {"-probe-timeout", e.ProbeTimeout},
		{"-probe-recheck-interval", e.ProbeRecheckInterval}, {"-ready-wait", e.ReadyWait},
		{"-drain-delay", e.DrainDelay}, {"-drain-timeout", e.DrainTimeout}, {"-event-stream-grace", e.EventStreamGrace},
		{"-termination-grace-period", e.TerminationGracePeriod},
	} {
		if d.v < 0 {
			bad("%s=%s must not be negative", d.flag, d.v)
		}
	}
	if err := e.BodyRate.Validate(""); err != nil {
		errs = append(errs, err)
	}
	if e.ProbePath != "" && !strings.HasPrefix(e.ProbePath, "/") {
		bad("-probe-path=%q must start with / (e.g. /healthz)", e.ProbePath)
	}
	if (e.TLSCertFile == "") != (e.TLSKeyFile == "") {
		bad("-tls-cert-file=%q and -tls-key-file=%q must be set together", e.TLSCertFile, e.TLSKeyFile)
	}
	if e.ProbeFailureThreshold < 0 {
		bad("-probe-failure-threshold=%d must be 1 or more", e.ProbeFailureThreshold)
	}
	if g := e.TerminationGracePeriod; g > 0 {
		if need := e.DrainDelay + e.DrainTimeout + shutdownMargin; need > g {
			bad("-drain-delay (%s) + -drain-timeout (%s) + %s to close down = %s does not fit in "+
				"-termination-grace-period (%s): lower -drain-timeout or -drain-delay, or raise the pod's terminationGracePeriodSeconds",
				e.DrainDelay, e.DrainTimeout, shutdownMargin, need, g)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("invalid sidecar configuration: %w", errors.Join(errs...))
	}
	return nil
}

// sameFixedAddr reports whether two listen addresses would collide. Port 0
// never collides: the kernel hands out distinct ports.
func sameFixedAddr(a, b string) bool {
	ah, ap, err1 := net.SplitHostPort(a)
	bh, bp, err2 := net.SplitHostPort(b)
	if err1 != nil || err2 != nil || ap != bp || ap == "0" {
		return false
	}
	wildcard := func(h string) bool { return h == "" || h == "0.0.0.0" || h == "::" }
	return ah == bh || wildcard(ah) || wildcard(bh)
}

// retryAfterSeconds rounds up so a client never retries earlier than asked.
func retryAfterSeconds(d time.Duration) int {
	s := int((d + time.Second - 1) / time.Second)
	return max(s, 1)
}
