package autoscaler

import (
	"errors"
	"flag"
	"fmt"
	"net/http"
	"time"
)

// Defaults of LoopConfig.
const (
	DefaultTick              = 2 * time.Second
	DefaultScrapeTimeout     = 500 * time.Millisecond
	DefaultScrapeParallelism = 64
	DefaultScaleTimeout      = 10 * time.Second
	DefaultDecisionHistory   = 64
	// DefaultIdleScrapeInterval bounds how late traffic that passes no
	// gateway is seen on an agent nobody calls through one: one default
	// stable window. At 2,000 quiet agents of 5 replicas it is ~170 scrapes
	// a second, each on a new connection (docs/scale.md).
	DefaultIdleScrapeInterval = 60 * time.Second
)

// LoopConfig configures a Loop. Zero fields take their defaults in NewLoop,
// so LoopConfig{} is a working configuration.
type LoopConfig struct {
	// Tick is how often every agent is scraped and decided (Knative: 2s).
	Tick time.Duration
	// ScrapeTimeout bounds one sidecar stats request. It must be well
	// under Tick: a slow replica is read as unknown, never waited for.
	ScrapeTimeout time.Duration
	// ScrapeParallelism bounds concurrent stats requests across agents.
	ScrapeParallelism int
	// IdleScrapeInterval is how often the replicas of a quiet agent (idle
	// at their last scrape, no request through a gateway since) are
	// scraped; other ticks take them as idle (quiet.go). It bounds how late
	// traffic that reaches replicas without a gateway the manager reads
	// is seen. At most Tick: every tick scrapes.
	IdleScrapeInterval time.Duration
	// GatewaysSeeAll says that every request a replica serves passed a
	// gateway whose demand the Loop reads: the sidecars refuse any other
	// (the manager's bypass protection, -gateway-token-secret or
	// -gateway-token-file). A quiet agent is then not scraped at all
	// while it stays quiet, since there is no traffic for the periodic
	// scrape to find, unless the DemandSource says a gateway's latest
	// reading failed (GatewayCoverage); IdleScrapeInterval applies then.
	// Set by the manager, not a flag.
	GatewaysSeeAll bool
	// ScaleTimeout bounds one SetScale call.
	ScaleTimeout time.Duration
	// DecisionHistory is how many distinct decisions are kept per agent
	// for Decisions.
	DecisionHistory int
	// Tuning holds the algorithm's knobs (panic window and threshold,
	// scale rates).
	Tuning Tuning

	// Now is the clock (nil: time.Now). Tests inject one; under
	// testing/synctest time.Now is already fake.
	Now func() time.Time `json:"-"`
	// HTTPClient scrapes sidecars (nil: a keep-alive client of its own).
	// Its own Timeout is not needed: ScrapeTimeout applies per request.
	HTTPClient *http.Client `json:"-"`
}

// RegisterFlags binds the configuration to command-line flags, each with
// its default.
func (c *LoopConfig) RegisterFlags(fs *flag.FlagSet) {
	t := DefaultTuning()
	fs.DurationVar(&c.Tick, "autoscaler-tick", DefaultTick, "how often the autoscaler scrapes replicas and decides")
	fs.DurationVar(&c.ScrapeTimeout, "autoscaler-scrape-timeout", DefaultScrapeTimeout, "timeout of one sidecar stats scrape; a failed scrape is treated as unknown, not zero")
	fs.IntVar(&c.ScrapeParallelism, "autoscaler-scrape-parallelism", DefaultScrapeParallelism, "maximum concurrent sidecar stats scrapes")
	fs.DurationVar(&c.IdleScrapeInterval, "autoscaler-idle-scrape-interval", DefaultIdleScrapeInterval, "how often the replicas of an agent nobody calls through a gateway are scraped (other ticks take them as idle); bounds how late traffic that bypasses the gateways is seen; at most -autoscaler-tick: scrape every tick")
	fs.DurationVar(&c.ScaleTimeout, "autoscaler-scale-timeout", DefaultScaleTimeout, "timeout of one scale request to the platform")
	fs.IntVar(&c.DecisionHistory, "autoscaler-decision-history", DefaultDecisionHistory, "distinct decisions kept per agent for describe")
	fs.Float64Var(&c.Tuning.PanicWindowPercent, "autoscaler-panic-window-percent", t.PanicWindowPercent, "panic window as a percentage of the agent's stable window")
	fs.Float64Var(&c.Tuning.PanicThresholdPercent, "autoscaler-panic-threshold-percent", t.PanicThresholdPercent, "panic-window demand, as a percentage of ready capacity, that starts panic mode")
	fs.Float64Var(&c.Tuning.MaxScaleUpRate, "autoscaler-max-scale-up-rate", t.MaxScaleUpRate, "most replicas one decision may ask for, as a multiple of ready replicas")
	fs.Float64Var(&c.Tuning.MaxScaleDownRate, "autoscaler-max-scale-down-rate", t.MaxScaleDownRate, "one decision keeps at least current/rate replicas (2: at most halve)")
	c.Tuning.BucketSize = t.BucketSize
}

// withDefaults fills zero fields.
func (c LoopConfig) withDefaults() LoopConfig {
	def := DefaultTuning()
	setDefault(&c.Tick, DefaultTick)
	setDefault(&c.ScrapeTimeout, DefaultScrapeTimeout)
	setDefault(&c.ScrapeParallelism, DefaultScrapeParallelism)
	setDefault(&c.IdleScrapeInterval, DefaultIdleScrapeInterval)
	setDefault(&c.ScaleTimeout, DefaultScaleTimeout)
	setDefault(&c.DecisionHistory, DefaultDecisionHistory)
	setDefault(&c.Tuning.PanicWindowPercent, def.PanicWindowPercent)
	setDefault(&c.Tuning.PanicThresholdPercent, def.PanicThresholdPercent)
	setDefault(&c.Tuning.MaxScaleUpRate, def.MaxScaleUpRate)
	setDefault(&c.Tuning.MaxScaleDownRate, def.MaxScaleDownRate)
	setDefault(&c.Tuning.BucketSize, def.BucketSize)
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

func setDefault[T comparable](p *T, def T) {
	var zero T
	if *p == zero {
		*p = def
	}
}

// Validate reports every setting that is out of range. Zero values are
// allowed: they mean the default.
func (c LoopConfig) Validate() error {
	c = c.withDefaults()
	var errs []error
	if c.Tick < 0 {
		errs = append(errs, fmt.Errorf("autoscaler tick (%s) must be positive", c.Tick))
	}
	if c.ScrapeTimeout < 0 || c.ScrapeTimeout >= c.Tick {
		errs = append(errs, fmt.Errorf("autoscaler scrape timeout (%s) must be positive and below the tick (%s)", c.ScrapeTimeout, c.Tick))
	}
	if c.ScrapeParallelism < 1 {
		errs = append(errs, fmt.Errorf("autoscaler scrape parallelism (%d) must be at least 1", c.ScrapeParallelism))
	}
	if c.IdleScrapeInterval < 0 {
		errs = append(errs, fmt.Errorf("autoscaler idle scrape interval (%s) must be positive", c.IdleScrapeInterval))
	}
	if c.ScaleTimeout < 0 {
		errs = append(errs, fmt.Errorf("autoscaler scale timeout (%s) must be positive", c.ScaleTimeout))
	}
	if c.DecisionHistory < 1 {
		errs = append(errs, fmt.Errorf("autoscaler decision history (%d) must be at least 1", c.DecisionHistory))
	}
	if err := c.Tuning.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("autoscaler tuning: %w", err))
	}
	return errors.Join(errs...)
}
