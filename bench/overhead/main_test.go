package main

import (
	"flag"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	// The harness re-executes itself as the baseline hops.
	if reexecuted() {
		return
	}
	os.Exit(m.Run())
}

const wrkReport = `Running 1s test @ http://127.0.0.1:18931/nonexistent
  1 threads and 2 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     3.14ms    3.27ms  21.77ms   86.76%
    Req/Sec   766.70    176.87     1.07k    60.00%
  Latency Distribution
     50%  612.00us
     75%    4.16ms
     90%    7.38ms
     99%    1.02s
  766 requests in 1.00s, 388.98KB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 10
Requests/sec:    763.33
Transfer/sec:    387.63KB
`

func TestParseWrk(t *testing.T) {
	r, err := parseWrk(wrkReport)
	if err != nil {
		t.Fatal(err)
	}
	want := result{p50: 612 * time.Microsecond, p90: 7380 * time.Microsecond, p99: 1020 * time.Millisecond,
		max: 21770 * time.Microsecond, requests: 766, throughput: 763.33, success: 1 - 13.0/766}
	if r != want {
		t.Errorf("parseWrk = %+v, want %+v", r, want)
	}
	if _, err := parseWrk("unable to connect to 127.0.0.1:1 Connection refused\n"); err == nil {
		t.Error("parseWrk accepted a report without results")
	}
	if d, err := parseWrkDuration("1.50m"); err != nil || d != 90*time.Second {
		t.Errorf("parseWrkDuration(1.50m) = %v, %v", d, err)
	}
}

func TestParseStat(t *testing.T) {
	// The command name may hold spaces and parentheses.
	line := "4242 (nginx: (worker) x) S 1 4242 4242 0 -1 4194624 100 0 0 0 250 75 0 0 20 0 1 0 123 456 789\n"
	d, err := parseStat(line)
	if err != nil || d != 3250*time.Millisecond {
		t.Errorf("parseStat = %v, %v; want 3.25s", d, err)
	}
	if _, err := parseStat("4242 (x) S 1"); err == nil {
		t.Error("parseStat accepted a short line")
	}
	// This process's own time, once it has burnt more than a tick.
	deadline := time.Now().Add(10 * time.Second)
	for x := 0; ; x++ {
		self, err := cpuTime(os.Getpid())
		if err != nil {
			t.Fatal(err)
		}
		if self > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("cpuTime(self) stayed 0 for 10s of busy work")
		}
		for i := range 1_000_000 {
			x ^= i
		}
	}
}

func TestParseGoBench(t *testing.T) {
	out := "goos: linux\nBenchmarkSidecarHandler/unlimited-2   \t  400000\t      3150 ns/op\t    3017 B/op\t      25 allocs/op\nPASS\n"
	got := parseGoBench(out)
	if len(got) != 1 || got[0] != (benchLine{name: "SidecarHandler/unlimited-2", nsPerOp: 3150, bPerOp: 3017, allocs: 25}) {
		t.Errorf("parseGoBench = %+v", got)
	}
}

func TestReplaceSection(t *testing.T) {
	f := t.TempDir() + "/doc.md"
	doc := "# Doc\n\n" + sectionBegin + "\nold\n" + sectionEnd + "\n\nrest\n"
	if err := os.WriteFile(f, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := replaceSection(f, "| new |\n"); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(f)
	if want := "# Doc\n\n" + sectionBegin + "\n\n| new |\n\n" + sectionEnd + "\n\nrest\n"; string(b) != want {
		t.Errorf("got %q, want %q", b, want)
	}
	if err := os.WriteFile(f, []byte("no markers\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := replaceSection(f, "x"); err == nil {
		t.Error("replaceSection succeeded without markers")
	}
}

// TestQuick runs the whole harness in its quick mode (every path, both
// loops, CPU and allocation counts) to show it works; its numbers mean
// nothing. It needs nginx and wrk (apt-get install nginx-light wrk), which
// CI installs and requires with FLINT_REQUIRE_NGINX=1.
func TestQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("builds flint and runs every path for a second each")
	}
	_, errNginx := nginxBinary()
	_, errWrk := exec.LookPath("wrk")
	if errNginx != nil || errWrk != nil {
		if os.Getenv("FLINT_REQUIRE_NGINX") == "1" {
			t.Fatalf("FLINT_REQUIRE_NGINX=1 but nginx or wrk is missing (apt-get install -y nginx-light wrk): %v %v", errNginx, errWrk)
		}
		t.Skip("nginx or wrk not installed (apt-get install -y nginx-light wrk)")
	}
	o, err := parseFlags(flag.NewFlagSet("overhead", flag.ContinueOnError), []string{"-quick", "-gobench=false", "-repo", "../.."})
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	paths, err := run(o, &out)
	if err != nil {
		t.Fatal(err)
	}
	report := out.String()
	t.Log("\n" + report)
	for _, name := range tableOrder {
		// Every path has a closed-loop row with a throughput and CPU per
		// process, and an open-loop row unless a script shapes its requests.
		want := 2
		if name == nameNginx2Mixed || name == nameGatewayMixed {
			want = 1
		}
		if n := strings.Count(report, "| "+name+" | "); n != want {
			t.Errorf("%d rows for %s, want %d", n, name, want)
		}
	}
	if len(paths) != len(tableOrder) {
		t.Fatalf("%d paths measured, want %d", len(paths), len(tableOrder))
	}
	for _, p := range paths {
		wantOpen := 1
		if p.script != "" {
			wantOpen = 0
		}
		if p.reqs == 0 || len(p.closed) != 1 || len(p.open[o.rates[0]]) != wantOpen {
			t.Errorf("%s: %d requests, %d closed-loop and %d open-loop results", p.name, p.reqs, len(p.closed), len(p.open[o.rates[0]]))
		}
		if len(p.hops) > 1 && p.proxyCPU() <= 0 {
			t.Errorf("%s: no CPU time counted for its proxies", p.name)
		}
		// The sidecar's admin port serves its metrics unauthenticated; the
		// gateway's may require credentials, and then shows "–".
		if p.name == nameSidecar && !strings.HasPrefix(p.allocsByProcess(), "sidecar ") {
			t.Errorf("%s: no allocations counted (%q)", p.name, p.allocsByProcess())
		}
	}
}
