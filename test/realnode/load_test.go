package realnode_test

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// load sends a steady rate of authenticated GETs through the gateway's
// Service and counts what came back.
type load struct {
	stopCh, done chan struct{}

	mu       sync.Mutex
	total    int
	codes    map[int]int
	errors   map[string]int
	noRetry  int      // 503 without Retry-After
	failures []string // a few examples
}

// startLoad sends rate requests per second to url with the API key until
// stop, from inside the node's network namespace.
func (in *flintInstall) startLoad(url string, rate int) *load {
	l := &load{stopCh: make(chan struct{}), done: make(chan struct{}), codes: map[int]int{}, errors: map[string]int{}}
	c := node.HTTPClient()
	atk := vegeta.NewAttacker(vegeta.Client(c), vegeta.Timeout(90*time.Second), vegeta.MaxWorkers(500), vegeta.KeepAlive(true))
	hdr := http.Header{"Authorization": {"Bearer " + in.apiKey}}
	results := atk.Attack(vegeta.NewStaticTargeter(vegeta.Target{Method: "GET", URL: url, Header: hdr}),
		vegeta.Rate{Freq: rate, Per: time.Second}, 0, "load")
	go func() {
		<-l.stopCh
		atk.Stop()
	}()
	go func() {
		defer close(l.done)
		for r := range results {
			l.record(r)
		}
	}()
	return l
}

func (l *load) record(r *vegeta.Result) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total++
	if r.Error != "" && r.Code == 0 {
		l.errors[r.Error]++
		if len(l.failures) < 5 {
			l.failures = append(l.failures, r.Error)
		}
		return
	}
	l.codes[int(r.Code)]++
	if r.Code == http.StatusServiceUnavailable && r.Headers.Get("Retry-After") == "" {
		l.noRetry++
	}
	if r.Code != http.StatusOK && len(l.failures) < 5 {
		l.failures = append(l.failures, fmt.Sprintf("%d %.200s", r.Code, strings.TrimSpace(string(r.Body))))
	}
}

// stop ends the load and waits for every request in flight.
func (l *load) stop() {
	close(l.stopCh)
	<-l.done
}

func (l *load) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var codes []string
	for c, n := range l.codes {
		codes = append(codes, fmt.Sprintf("%d×%d", n, c))
	}
	sort.Strings(codes)
	return fmt.Sprintf("%d requests sent: %s; transport errors %v; examples %q", l.total, strings.Join(codes, " "), l.errors, l.failures)
}

// failed counts the requests that did not get a 200: transport errors and
// any other status, 503 included (none of these tests overloads the agent).
func (l *load) failed() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, c := range l.errors {
		n += c
	}
	for code, c := range l.codes {
		if code != http.StatusOK {
			n += c
		}
	}
	return n
}

// failedBeyondOverload counts the requests that got neither a 200 nor the
// answer the design allows under overload, 503 with Retry-After: transport
// errors, any other status, and 503s without Retry-After.
func (l *load) failedBeyondOverload() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := l.noRetry
	for _, c := range l.errors {
		n += c
	}
	for code, c := range l.codes {
		if code != http.StatusOK && code != http.StatusServiceUnavailable {
			n += c
		}
	}
	return n
}
