package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// auditWrites counts write requests per user in the audit log between from
// and to (by the time the API server received them).
func auditWrites(path string, from, to time.Time) (map[string]int, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]int{}
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 1<<20), 16<<20)
	for s.Scan() {
		var ev struct {
			Stage    string    `json:"stage"`
			Verb     string    `json:"verb"`
			Received time.Time `json:"requestReceivedTimestamp"`
			User     struct {
				Username string `json:"username"`
			} `json:"user"`
		}
		if json.Unmarshal(s.Bytes(), &ev) != nil || ev.Stage != "ResponseComplete" {
			continue
		}
		if ev.Received.Before(from) || !ev.Received.Before(to) {
			continue
		}
		out[ev.User.Username]++
	}
	return out, s.Err()
}

// window is what each process did over an interval.
type window struct {
	dur    time.Duration
	cpu    map[string]float64 // share of one core
	writes map[string]int     // API writes by user (= process name)
}

// measureWindow samples every process's CPU over d and counts the API
// writes in that interval from the audit log.
func measureWindow(procs []*proc, auditLog string, d time.Duration) (window, error) {
	w := window{dur: d, cpu: map[string]float64{}}
	before := map[string]int64{}
	for _, p := range procs {
		t, err := p.cpuTicks()
		if err != nil {
			return w, err
		}
		before[p.name] = t
	}
	from := time.Now()
	time.Sleep(d)
	to := time.Now()
	for _, p := range procs {
		t, err := p.cpuTicks()
		if err != nil {
			return w, err
		}
		w.cpu[p.name] = float64(t-before[p.name]) / ticksPerSecond / to.Sub(from).Seconds()
	}
	time.Sleep(auditLag)
	var err error
	w.writes, err = auditWrites(auditLog, from, to)
	return w, err
}

// propagation updates EndpointSlices of agents nobody invokes, one at a
// time, each replacing one endpoint by a new address, and measures how
// long until every gateway routes to the new address.
func propagation(ctx context.Context, kube kubernetes.Interface, gws []*gateway, keys []agentKey,
	addrs map[agentKey][]string, changes int, next *int) ([]time.Duration, error) {
	client := &http.Client{Timeout: 5 * time.Second}
	var lat []time.Duration
	rng := rand.New(rand.NewPCG(1, 2))
	for range changes {
		k := keys[rng.IntN(len(keys))]
		a := addrs[k]
		fresh := endpointAddr(*next)
		*next++
		a[rng.IntN(len(a))] = fresh
		slice, err := kube.DiscoveryV1().EndpointSlices(k.ns).Get(ctx, k.name+"-scale", metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		slice.Endpoints = sliceObject(k, a, idleAdminPort).Endpoints
		t0 := time.Now()
		if _, err := kube.DiscoveryV1().EndpointSlices(k.ns).Update(ctx, slice, metav1.UpdateOptions{}); err != nil {
			return nil, err
		}
		want := fresh + ":" + strconv.Itoa(servingPort)
		var wg sync.WaitGroup
		res := make([]time.Duration, len(gws))
		errs := make([]error, len(gws))
		for i, g := range gws {
			wg.Go(func() {
				for time.Since(t0) < 10*time.Second {
					eps, err := g.endpoints(client, k)
					if err == nil && slices.Contains(eps, want) {
						res[i] = time.Since(t0)
						return
					}
					time.Sleep(2 * time.Millisecond)
				}
				errs[i] = fmt.Errorf("%s: %s/%s never routed to %s", g.name, k.ns, k.name, want)
			})
		}
		wg.Wait()
		for i := range gws {
			if errs[i] != nil {
				return nil, errs[i]
			}
			lat = append(lat, res[i])
		}
	}
	slices.Sort(lat)
	return lat, nil
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(p*float64(len(sorted))))]
}

// gaugeValue reads an unlabelled gauge from a Prometheus text page.
func gaugeValue(url, name string) (float64, error) {
	v, _, err := histogramSum(url, name)
	return v, err
}

// histogramSum reads NAME_sum and NAME_count from a Prometheus text page.
func histogramSum(url, name string) (sum float64, count float64, err error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, 0, err
	}
	for l := range strings.SplitSeq(string(body), "\n") {
		f := strings.Fields(l)
		if len(f) != 2 {
			continue
		}
		v, _ := strconv.ParseFloat(f[1], 64)
		switch f[0] {
		case name, name + "_sum":
			sum = v
		case name + "_count":
			count = v
		}
	}
	return sum, count, nil
}

// invokeLoop sends one request per agent per interval, each agent's going
// round-robin over the gateways, until ctx ends; it returns the number of failures.
func invokeLoop(ctx context.Context, gws []*gateway, keys []agentKey, interval time.Duration) (ok, failed int) {
	client := &http.Client{Timeout: 5 * time.Second}
	t := time.NewTicker(interval)
	defer t.Stop()
	for round := 0; ; round++ {
		for i, k := range keys {
			// Each agent moves on to the next gateway every round, so every
			// gateway sees every agent whatever the counts.
			g := gws[(round+i)%len(gws)]
			resp, err := client.Get(g.url + "/v1/agents/" + k.ns + "/" + k.name + "/")
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			if err != nil || resp.StatusCode != http.StatusOK {
				failed++
			} else {
				ok++
			}
		}
		select {
		case <-ctx.Done():
			return ok, failed
		case <-t.C:
		}
	}
}

// auditLag is how long the audit log's batching may hold an event back.
const auditLag = 2500 * time.Millisecond

// waitQuiet waits until user has made no API write for quiet (the manager
// converging after a start: statuses, and applies it cannot know are
// no-ops after a restart) and returns when its last write was seen.
func waitQuiet(auditLog, user string, quiet, timeout time.Duration) (time.Time, error) {
	start := time.Now()
	for time.Since(start) < timeout {
		time.Sleep(time.Second)
		to := time.Now().Add(-auditLag)
		if to.Sub(start) < quiet {
			continue
		}
		w, err := auditWrites(auditLog, to.Add(-quiet), to)
		if err != nil {
			return time.Time{}, err
		}
		if w[user] == 0 {
			return to.Add(-quiet), nil
		}
	}
	return time.Time{}, fmt.Errorf("%s still writing to the API server after %s", user, timeout)
}
