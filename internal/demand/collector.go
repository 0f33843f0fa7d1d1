package demand

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/flint-dev/flint/internal/platform"
	"github.com/flint-dev/flint/internal/wire"
)

// CollectorConfig says where the gateways are and how to reach them.
type CollectorConfig struct {
	// Gateways are base URLs of gateways' control ports. Each host is
	// resolved every interval and every address it resolves to is a
	// gateway: name a headless Service to reach every gateway pod.
	Gateways []string
	// Token is the shared control token.
	Token string
	// TokenFrom, when set, gives the token to present instead, on every
	// request: it follows a rotation (reload.Value).
	TokenFrom func() string
	// Interval is how often every gateway is resolved and scraped.
	Interval time.Duration
	// Timeout bounds one scrape.
	Timeout time.Duration
}

// Validate reports configuration problems, naming the flag to change.
func (c CollectorConfig) Validate() error {
	var errs []error
	for _, g := range c.Gateways {
		if u, err := url.Parse(g); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" || u.Port() == "" {
			errs = append(errs, fmt.Errorf("-gateways: %q is not a URL such as http://flint-gateway-control.flint-system.svc:9090", g))
		}
	}
	if len(c.Gateways) > 0 && c.Token == "" && c.TokenFrom == nil {
		errs = append(errs, errors.New("-gateways needs -control-token-file: gateways answer only to the shared control token"))
	}
	if c.Interval <= 0 || c.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("gateway scrape interval (%s) and timeout (%s) must be positive", c.Interval, c.Timeout))
	}
	return errors.Join(errs...)
}

// Collector gathers every gateway's demand for the autoscaler. It
// implements autoscaler.DemandSource; Run keeps it current.
type Collector struct {
	cfg     CollectorConfig
	log     *slog.Logger
	client  *http.Client // scrapes, with cfg.Timeout
	streams *http.Client // poke streams, no timeout
	resolve func(ctx context.Context, host string) ([]string, error)

	mu       sync.RWMutex
	gateways map[string]*gatewayState // by base URL of one address
	totals   map[platform.AgentKey]*totals
}

// gatewayState is what the collector knows of one gateway address.
type gatewayState struct {
	origin     string // the configured URL it was resolved from
	instance   string // of the last good scrape; "" before it
	read       bool   // the latest scrape succeeded
	last       map[platform.AgentKey]Record
	stopStream context.CancelFunc
}

// totals are an agent's counters summed over gateways, kept monotonic:
// each gateway's growth is added, and a restarted gateway's counts start
// over from zero rather than taking the sum back.
type totals struct{ rejected, requests uint64 }

// NewCollector returns a collector; call Run to start it.
func NewCollector(cfg CollectorConfig, log *slog.Logger) (*Collector, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Collector{
		cfg: cfg, log: log,
		client:   &http.Client{Timeout: cfg.Timeout},
		streams:  &http.Client{},
		resolve:  net.DefaultResolver.LookupHost,
		gateways: map[string]*gatewayState{},
		totals:   map[platform.AgentKey]*totals{},
	}, nil
}

// Demand implements autoscaler.DemandSource: held and in-flight requests
// summed over the gateways' latest answers (a gateway whose scrape failed
// counts with its last answer: a missing scrape is not a zero), totals
// summed over their growth.
func (c *Collector) Demand(key platform.AgentKey) wire.Demand {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var d wire.Demand
	for _, gw := range c.gateways {
		r, ok := gw.last[key]
		if !ok {
			continue
		}
		d.Held += r.Held
		d.InFlight += r.InFlight
		if r.LastRequest.After(d.LastRequest) {
			d.LastRequest = r.LastRequest
		}
	}
	if t, ok := c.totals[key]; ok {
		d.RejectedTotal, d.RequestsTotal = t.rejected, t.requests
	}
	return d
}

// Run resolves and scrapes the gateways every interval and keeps a poke
// stream open to each, calling poke for every request a gateway holds for
// an agent with no ready replica, until ctx ends. invoked, if not nil, is
// given every agent's last request as each gateway reports it, once per
// scrape: the manager records it, so status.lastInvocationAt is written
// once per agent however many gateways see traffic.
func (c *Collector) Run(ctx context.Context, poke func(platform.AgentKey), invoked func(platform.AgentKey, time.Time)) {
	defer c.stopStreams()
	t := time.NewTicker(c.cfg.Interval)
	defer t.Stop()
	for {
		c.refresh(ctx, poke, invoked)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// refresh finds the gateways, starts and stops their poke streams, and
// scrapes them all at once.
func (c *Collector) refresh(ctx context.Context, poke func(platform.AgentKey), invoked func(platform.AgentKey, time.Time)) {
	bases := c.discover(ctx)
	c.mu.Lock()
	for base, gw := range c.gateways {
		if _, ok := bases[base]; !ok {
			gw.stopStream()
			delete(c.gateways, base)
			c.log.Info("gateway gone", "gateway", base)
		}
	}
	for base, origin := range bases {
		if _, ok := c.gateways[base]; !ok {
			sctx, stop := context.WithCancel(ctx)
			c.gateways[base] = &gatewayState{origin: origin, last: map[platform.AgentKey]Record{}, stopStream: stop}
			go c.stream(sctx, base, poke)
			c.log.Info("gateway found", "gateway", base)
		}
	}
	c.mu.Unlock()
	var wg sync.WaitGroup
	for base := range bases {
		wg.Go(func() {
			snap, err := c.scrape(ctx, base)
			if err != nil {
				c.failed(base)
				if ctx.Err() == nil {
					c.log.Warn("scrape gateway demand", "gateway", base, "err", err)
				}
				return
			}
			c.merge(base, snap)
			if invoked == nil {
				return
			}
			for _, r := range snap.Agents {
				if !r.LastRequest.IsZero() {
					invoked(r.key(), r.LastRequest)
				}
			}
		})
	}
	wg.Wait()
}

// discover resolves every configured gateway URL to one base URL per
// address (mapped to the URL it came from). A name that fails to resolve
// keeps the gateways it had.
func (c *Collector) discover(ctx context.Context) map[string]string {
	bases := map[string]string{}
	for _, raw := range c.cfg.Gateways {
		u, _ := url.Parse(raw) // validated
		rctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
		addrs, err := c.resolve(rctx, u.Hostname())
		cancel()
		if err != nil {
			c.log.Warn("resolve gateways", "url", raw, "err", err)
			c.mu.RLock()
			for base, gw := range c.gateways {
				if gw.origin == raw {
					bases[base] = raw
				}
			}
			c.mu.RUnlock()
			continue
		}
		for _, a := range addrs {
			bases[u.Scheme+"://"+net.JoinHostPort(a, u.Port())] = raw
		}
	}
	return bases
}

func (c *Collector) get(ctx context.Context, client *http.Client, base, path string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
	if err != nil {
		return nil, err
	}
	token := c.cfg.Token
	if c.cfg.TokenFrom != nil {
		token = c.cfg.TokenFrom()
	}
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	if res.StatusCode != http.StatusOK {
		res.Body.Close()
		return nil, fmt.Errorf("GET %s: %s", path, res.Status)
	}
	return res, nil
}

func (c *Collector) scrape(ctx context.Context, base string) (Snapshot, error) {
	var snap Snapshot
	res, err := c.get(ctx, c.client, base, DemandPath)
	if err != nil {
		return snap, err
	}
	defer res.Body.Close()
	if err := json.NewDecoder(res.Body).Decode(&snap); err != nil {
		return snap, fmt.Errorf("decode %s: %w", DemandPath, err)
	}
	return snap, nil
}

// merge records a gateway's answer and adds its growth to the totals. The
// first answer from an address is a baseline (its counts are from before
// this collector knew it); a new instance at a known address restarted, so
// everything it counted is new.
func (c *Collector) merge(base string, snap Snapshot) {
	c.mu.Lock()
	defer c.mu.Unlock()
	gw, ok := c.gateways[base]
	if !ok {
		return // gone meanwhile
	}
	first, restarted := gw.instance == "", gw.instance != "" && gw.instance != snap.Instance
	next := make(map[platform.AgentKey]Record, len(snap.Agents))
	for _, r := range snap.Agents {
		key := r.key()
		next[key] = r
		if first {
			continue
		}
		prev, had := gw.last[key]
		if restarted || !had {
			prev = Record{}
		}
		t := c.totals[key]
		if t == nil {
			t = &totals{}
			c.totals[key] = t
		}
		t.requests += grown(prev.RequestsTotal, r.RequestsTotal)
		t.rejected += grown(prev.RejectedTotal, r.RejectedTotal)
	}
	gw.instance, gw.last, gw.read = snap.Instance, next, true
}

// failed records that the latest scrape of a gateway failed: its last
// answer still counts, but requests it passes now are not seen.
func (c *Collector) failed(base string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gw, ok := c.gateways[base]; ok {
		gw.read = false
	}
}

// EveryGatewayRead implements autoscaler.GatewayCoverage: at least one
// gateway is known and the latest scrape of each succeeded. The autoscaler
// skips quiet agents' periodic scrapes only then (with bypass protection
// on): a gateway it cannot read may be passing requests.
func (c *Collector) EveryGatewayRead() bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	for _, gw := range c.gateways {
		if !gw.read {
			return false
		}
	}
	return len(c.gateways) > 0
}

// grown is how much a counter grew; a counter that went back restarted.
func grown(prev, cur uint64) uint64 {
	if cur < prev {
		return cur
	}
	return cur - prev
}

// stream keeps a poke stream open to one gateway until ctx ends,
// reconnecting with back-off.
func (c *Collector) stream(ctx context.Context, base string, poke func(platform.AgentKey)) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		began := time.Now()
		err := c.readPokes(ctx, base, poke)
		if ctx.Err() != nil {
			return
		}
		if time.Since(began) > time.Minute {
			backoff = 100 * time.Millisecond
		}
		c.log.Debug("poke stream ended", "gateway", base, "err", err, "retryIn", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// readPokes reads one stream. A stream silent for three keep-alives is
// dead (the gateway vanished without closing it).
func (c *Collector) readPokes(ctx context.Context, base string, poke func(platform.AgentKey)) error {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	res, err := c.get(sctx, c.streams, base, PokesPath)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	watchdog := time.AfterFunc(3*DefaultKeepAlive, cancel)
	defer watchdog.Stop()
	lines := bufio.NewScanner(res.Body)
	for lines.Scan() {
		watchdog.Reset(3 * DefaultKeepAlive)
		if len(lines.Bytes()) == 0 {
			continue // keep-alive
		}
		var r Record
		if err := json.Unmarshal(lines.Bytes(), &r); err != nil {
			return fmt.Errorf("decode poke: %w", err)
		}
		c.notePoke(base, r)
		poke(r.key())
	}
	if err := lines.Err(); err != nil {
		return err
	}
	return io.EOF
}

// notePoke takes the held count a poke carries, so the autoscaler's next
// decision sees the held request even before the next scrape.
func (c *Collector) notePoke(base string, r Record) {
	c.mu.Lock()
	defer c.mu.Unlock()
	gw, ok := c.gateways[base]
	if !ok {
		return
	}
	prev := gw.last[r.key()]
	prev.Namespace, prev.Name = r.Namespace, r.Name
	prev.Held, prev.InFlight, prev.LastRequest = r.Held, r.InFlight, r.LastRequest
	gw.last[r.key()] = prev
}

func (c *Collector) stopStreams() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, gw := range c.gateways {
		gw.stopStream()
	}
}
