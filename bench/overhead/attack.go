package main

import (
	"net"
	"net/http"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// maxAttackConns bounds an open-loop attack's connections and workers: at
// the highest default rate (4,000/s) it sustains answers of up to 250 ms.
const maxAttackConns = 1000

type result struct {
	p50, p90, p99, max time.Duration
	success            float64
	throughput         float64
	requests           int64
}

// attack loads url at rate requests per second (open loop), or as fast as
// workers connections allow when rate is 0.
func attack(url string, rate int, duration time.Duration, workers int) result {
	tr := vegeta.NewStaticTargeter(vegeta.Target{Method: "GET", URL: url})
	// The attacker's own client, so that its connections are closed when the
	// measurement ends (vegeta's stay open, and every measurement leaves its
	// pool behind), and bounded: a path that falls behind the rate shows as
	// latency and failures, not as thousands of connections that exhaust
	// the machine's file descriptors (the benchmark itself then fails).
	client := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
		MaxIdleConnsPerHost: maxAttackConns,
		MaxConnsPerHost:     maxAttackConns,
		DisableCompression:  true,
	}
	defer client.CloseIdleConnections()
	opts := []func(*vegeta.Attacker){vegeta.Timeout(30 * time.Second), vegeta.KeepAlive(true),
		vegeta.Client(&http.Client{Transport: client, Timeout: 30 * time.Second}), vegeta.MaxWorkers(maxAttackConns)}
	r := vegeta.Rate{Freq: rate, Per: time.Second}
	if rate == 0 {
		opts = append(opts, vegeta.Workers(uint64(workers)), vegeta.MaxWorkers(uint64(workers)))
	}
	atk := vegeta.NewAttacker(opts...)
	var m vegeta.Metrics
	for res := range atk.Attack(tr, r, duration, "bench") {
		m.Add(res)
	}
	m.Close()
	return result{
		p50: m.Latencies.P50, p90: m.Latencies.P90, p99: m.Latencies.P99, max: m.Latencies.Max,
		success: m.Success, throughput: m.Throughput, requests: int64(m.Requests),
	}
}
