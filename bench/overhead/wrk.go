package main

import (
	"bufio"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// closedLoop runs wrk against url with conns keep-alive connections for
// duration: each connection sends its next request as soon as the last
// one is answered, so this measures maximum throughput. script, if set, is
// a wrk Lua script that shapes the requests.
func closedLoop(url, script string, conns, threads int, duration time.Duration) (result, error) {
	secs := max(1, int(duration.Round(time.Second)/time.Second))
	args := []string{"-t" + strconv.Itoa(threads), "-c" + strconv.Itoa(conns), "-d" + strconv.Itoa(secs) + "s", "--latency"}
	if script != "" {
		args = append(args, "-s", script)
	}
	out, err := exec.Command("wrk", append(args, url)...).CombinedOutput()
	if err != nil {
		return result{}, fmt.Errorf("wrk %s: %w\n%s", url, err, out)
	}
	return parseWrk(string(out))
}

// parseWrk reads wrk's --latency report.
func parseWrk(out string) (result, error) {
	var r result
	var errs int64
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 2 && (f[0] == "50%" || f[0] == "90%" || f[0] == "99%"):
			d, err := parseWrkDuration(f[1])
			if err != nil {
				return r, err
			}
			switch f[0] {
			case "50%":
				r.p50 = d
			case "90%":
				r.p90 = d
			default:
				r.p99 = d
			}
		case len(f) >= 5 && f[0] == "Latency" && r.max == 0:
			r.max, _ = parseWrkDuration(f[3])
		case len(f) >= 4 && f[1] == "requests" && f[2] == "in":
			r.requests, _ = strconv.ParseInt(f[0], 10, 64)
		case len(f) == 2 && f[0] == "Requests/sec:":
			r.throughput, _ = strconv.ParseFloat(f[1], 64)
		case len(f) == 5 && f[0] == "Non-2xx":
			n, _ := strconv.ParseInt(f[4], 10, 64)
			errs += n
		case len(f) >= 3 && f[0] == "Socket" && f[1] == "errors:":
			for _, kv := range strings.Split(strings.Join(f[2:], " "), ",") {
				kv := strings.Fields(kv)
				if len(kv) == 2 {
					n, _ := strconv.ParseInt(kv[1], 10, 64)
					errs += n
				}
			}
		}
	}
	if r.requests == 0 || r.throughput == 0 || r.p50 == 0 {
		return r, fmt.Errorf("cannot read wrk's report:\n%s", out)
	}
	r.success = 1 - float64(errs)/float64(r.requests)
	return r, nil
}

// parseWrkDuration reads wrk's latencies: 512.00us, 1.20ms, 2.00s, 1.00m.
func parseWrkDuration(s string) (time.Duration, error) {
	if strings.HasSuffix(s, "m") && !strings.HasSuffix(s, "ms") {
		s += "in" // wrk's minutes; "1.00m" is not a Go duration
		v, err := strconv.ParseFloat(strings.TrimSuffix(s, "min"), 64)
		return time.Duration(v * float64(time.Minute)), err
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("wrk latency %q: %w", s, err)
	}
	return d, nil
}
