package autoscaler

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/flint-dev/flint/internal/platform"
	"github.com/flint-dev/flint/internal/wire"
)

// maxStatsBody bounds what a sidecar may send; Stats is a few hundred bytes.
const maxStatsBody = 64 << 10

// scraper reads sidecars' Stats. It bounds concurrent requests across all
// agents and gives each one ScrapeTimeout: a replica that is slow to answer
// is unknown for this tick, not waited for.
type scraper struct {
	client  *http.Client
	timeout time.Duration
	slots   chan struct{}
}

func newScraper(client *http.Client, timeout time.Duration, parallelism int, tick time.Duration) *scraper {
	if client == nil {
		client = &http.Client{Transport: &http.Transport{
			MaxIdleConnsPerHost: 2,
			// A replica scraped every tick keeps its connection; one of a
			// quiet agent, scraped every IdleScrapeInterval, does not
			// hold one (two goroutines and 8 KiB of buffers each: 10,000
			// replicas would cost the manager ~200 MiB).
			IdleConnTimeout:    3 * tick,
			DisableCompression: true,
		}}
	}
	return &scraper{client: client, timeout: timeout, slots: make(chan struct{}, parallelism)}
}

// replicaID names one lifetime of a replica: the same name at a new address
// is a new sidecar whose counters started from zero.
func replicaID(ep platform.Endpoint) string { return ep.Replica + "@" + ep.AdminAddr }

// scrapeAll scrapes every endpoint in parallel and returns one sample per
// endpoint plus the errors. prev holds each replica's previous snapshot and is
// replaced by the returned map, which drops replicas that are gone and keeps
// the old snapshot of a replica whose scrape failed, so its next average spans
// the gap exactly.
// closeConns asks for each connection to be closed after its scrape.
func (s *scraper) scrapeAll(ctx context.Context, eps []platform.Endpoint, prev map[string]wire.Stats, closeConns bool) ([]ReplicaSample, map[string]wire.Stats, []error) {
	samples := make([]ReplicaSample, len(eps))
	snaps := make([]wire.Stats, len(eps))
	errs := make([]error, len(eps))
	// A goroutine starts once it has a slot: at most parallelism scrapes
	// run at once across all agents, and no goroutine per replica waits
	// for a slot (after a restart, every agent's workers scrape at once).
	var wg sync.WaitGroup
	for i, ep := range eps {
		if !s.acquire(ctx) {
			errs[i] = fmt.Errorf("scrape %s at %s: %w", ep.Replica, ep.AdminAddr, ctx.Err())
			continue
		}
		wg.Go(func() {
			defer s.release()
			snaps[i], errs[i] = s.scrape(ctx, ep, closeConns)
		})
	}
	wg.Wait()

	next := make(map[string]wire.Stats, len(eps))
	var failed []error
	for i, ep := range eps {
		id := replicaID(ep)
		old, had := prev[id]
		if errs[i] != nil {
			failed = append(failed, errs[i])
			if had {
				next[id] = old
			}
			continue // samples[i] stays unknown
		}
		if had {
			samples[i] = SampleFromStats(&old, snaps[i])
		} else {
			samples[i] = SampleFromStats(nil, snaps[i])
		}
		next[id] = snaps[i]
	}
	return samples, next, failed
}

func (s *scraper) acquire(ctx context.Context) bool {
	select {
	case s.slots <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

func (s *scraper) release() { <-s.slots }

// scrape fetches one sidecar's Stats; the caller holds a slot.
func (s *scraper) scrape(ctx context.Context, ep platform.Endpoint, closeConn bool) (wire.Stats, error) {
	var st wire.Stats
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+ep.AdminAddr+wire.PathStats, nil)
	if err != nil {
		return st, fmt.Errorf("scrape %s at %s: %w", ep.Replica, ep.AdminAddr, err)
	}
	req.Close = closeConn
	resp, err := s.client.Do(req)
	if err != nil {
		return st, fmt.Errorf("scrape %s: %w", ep.Replica, err)
	}
	defer resp.Body.Close()
	body := io.LimitReader(resp.Body, maxStatsBody)
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, body) // keep the connection reusable
		return st, fmt.Errorf("scrape %s at %s: status %s", ep.Replica, ep.AdminAddr, resp.Status)
	}
	if err := json.NewDecoder(body).Decode(&st); err != nil {
		return st, fmt.Errorf("scrape %s at %s: decode stats: %w", ep.Replica, ep.AdminAddr, err)
	}
	return st, nil
}
