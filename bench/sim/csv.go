package main

import (
	"encoding/csv"
	"fmt"
	"os"
	"strconv"

	"github.com/flint-dev/flint/internal/autoscaler/sim"
)

// csvHeader names the columns of the per-tick CSV.
var csvHeader = []string{
	"t_seconds", "offered_concurrency", "arrivals_per_second", "rejected_per_second",
	"capacity", "in_flight", "queued", "held",
	"demand", "stable_demand", "panic_demand",
	"current", "ready", "desired", "reason", "panic", "unknown_replicas",
}

// writeCSV writes one row per tick.
func writeCSV(path string, res *sim.Result) (err error) {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("create CSV: %w", err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("close CSV: %w", cerr)
		}
	}()
	w := csv.NewWriter(f)
	if err := w.Write(csvHeader); err != nil {
		return fmt.Errorf("write CSV: %w", err)
	}
	num := func(v float64) string { return strconv.FormatFloat(v, 'f', 3, 64) }
	for _, p := range res.Points {
		d := p.Decision
		row := []string{
			num(p.T.Seconds()), num(p.Offered), num(p.Arrivals), num(p.Rejected),
			num(p.Capacity), strconv.Itoa(p.InFlight), strconv.Itoa(p.Queued), strconv.Itoa(p.Held),
			num(d.Demand), num(d.StableDemand), num(d.PanicDemand),
			strconv.Itoa(int(d.Current)), strconv.Itoa(int(p.Ready)), strconv.Itoa(int(d.Desired)),
			string(d.Reason), strconv.FormatBool(d.Panic), strconv.Itoa(int(d.Unknown)),
		}
		if err := w.Write(row); err != nil {
			return fmt.Errorf("write CSV: %w", err)
		}
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return fmt.Errorf("write CSV: %w", err)
	}
	return nil
}
