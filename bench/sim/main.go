// Command sim replays load traces against Flint's autoscaler and writes, per
// trace, a CSV of every tick and a PNG plot of demand, capacity, replicas and
// refused load.
//
//	go run ./bench/sim -all -out docs/img          # every trace in bench/sim/traces
//	go run ./bench/sim -trace my.trace -out /tmp   # one trace file
//
// With -compare each trace is also replayed with the gateway's held and
// refused requests hidden from the autoscaler (what a scaler that only sums
// admitted in-flight requests sees), drawn as a dashed line. The trace format
// is documented in internal/autoscaler/sim (ParseTrace); the algorithm in
// docs/autoscaling.md.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/flint-dev/flint/bench/sim/traces"
	"github.com/flint-dev/flint/internal/autoscaler/sim"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "sim:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer) error {
	fset := flag.NewFlagSet("sim", flag.ContinueOnError)
	traceFile := fset.String("trace", "", "replay this trace file")
	all := fset.Bool("all", false, "replay every trace in bench/sim/traces")
	out := fset.String("out", "sim-out", "directory for the CSV and PNG files")
	compare := fset.Bool("compare", false, "also replay with held and refused requests hidden from the autoscaler")
	if err := fset.Parse(args); err != nil {
		return err
	}
	if (*traceFile == "") == !*all {
		return errors.New("give exactly one of -trace FILE or -all")
	}
	trs, err := loadTraces(*traceFile)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return fmt.Errorf("create output directory: %w", err)
	}
	for _, tr := range trs {
		if err := replay(tr, *out, *compare, stdout); err != nil {
			return err
		}
	}
	return nil
}

// loadTraces reads one trace file, or every embedded trace when file is "".
func loadTraces(file string) ([]*sim.Trace, error) {
	if file != "" {
		tr, err := parseFile(os.DirFS(filepath.Dir(file)), filepath.Base(file))
		if err != nil {
			return nil, err
		}
		return []*sim.Trace{tr}, nil
	}
	return embeddedTraces()
}

// embeddedTraces parses every trace in bench/sim/traces, by file name.
func embeddedTraces() ([]*sim.Trace, error) {
	names, err := fs.Glob(traces.FS, "*.trace")
	if err != nil {
		return nil, fmt.Errorf("list traces: %w", err)
	}
	sort.Strings(names)
	var trs []*sim.Trace
	for _, name := range names {
		tr, err := parseFile(traces.FS, name)
		if err != nil {
			return nil, err
		}
		trs = append(trs, tr)
	}
	return trs, nil
}

func parseFile(fsys fs.FS, name string) (*sim.Trace, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, fmt.Errorf("open trace: %w", err)
	}
	defer f.Close()
	return sim.ParseTrace(strings.TrimSuffix(name, ".trace"), f)
}

// replay runs one trace (and its comparison), writes its files and prints
// its summary.
func replay(tr *sim.Trace, dir string, compare bool, stdout io.Writer) error {
	res, err := sim.Run(tr, sim.Options{})
	if err != nil {
		return err
	}
	var admittedOnly *sim.Result
	if compare {
		if admittedOnly, err = sim.Run(tr, sim.Options{AdmittedOnly: true}); err != nil {
			return err
		}
	}
	base := filepath.Join(dir, "autoscaling-"+tr.Name)
	if err := writeCSV(base+".csv", res); err != nil {
		return err
	}
	if err := writePlot(base+".png", res, admittedOnly); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "== %s: %s\n%s", tr.Name, tr.Description, res.Summary)
	if admittedOnly != nil {
		fmt.Fprintf(stdout, "-- admitted-only view:\n%s", admittedOnly.Summary)
	}
	fmt.Fprintf(stdout, "wrote %s.csv and %s.png\n\n", base, base)
	return nil
}
