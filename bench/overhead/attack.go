package main

import (
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

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
	opts := []func(*vegeta.Attacker){vegeta.Timeout(30 * time.Second), vegeta.KeepAlive(true)}
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
