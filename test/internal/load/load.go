// Package load runs steady open-loop traffic (vegeta) for the suites that
// check a cluster loses no request while it changes under load (the fake
// node's e2e tests, the real node's), and counts what came back. Each
// suite builds its own attacker and target: how it reaches the gateway
// and with which credentials is its own.
package load

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// maxExamples is how many failures are kept to show.
const maxExamples = 5

// Load is traffic under way, counted by outcome.
type Load struct {
	stopCh, done chan struct{}

	mu       sync.Mutex
	total    int
	codes    map[int]int
	errors   map[string]int
	noRetry  int      // 503s without Retry-After
	failures []string // a few examples of what FailedBeyondOverload counts
	overload string   // the first 503 with Retry-After
}

// Start sends rate requests per second from tr with atk until Stop.
func Start(atk *vegeta.Attacker, tr vegeta.Targeter, rate int) *Load {
	l := &Load{stopCh: make(chan struct{}), done: make(chan struct{}), codes: map[int]int{}, errors: map[string]int{}}
	results := atk.Attack(tr, vegeta.Rate{Freq: rate, Per: time.Second}, 0, "load")
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

func (l *Load) record(r *vegeta.Result) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total++
	if r.Error != "" && r.Code == 0 {
		l.errors[r.Error]++
		l.example(r.Error)
		return
	}
	l.codes[int(r.Code)]++
	answer := fmt.Sprintf("%d %.200s", r.Code, strings.TrimSpace(string(r.Body)))
	switch {
	case r.Code == http.StatusOK:
	case r.Code == http.StatusServiceUnavailable && r.Headers.Get("Retry-After") != "":
		if l.overload == "" {
			l.overload = answer
		}
	default:
		if r.Code == http.StatusServiceUnavailable {
			l.noRetry++
		}
		l.example(answer)
	}
}

func (l *Load) example(s string) {
	if len(l.failures) < maxExamples {
		l.failures = append(l.failures, s)
	}
}

// Stop ends the load and waits for every request in flight.
func (l *Load) Stop() {
	close(l.stopCh)
	<-l.done
}

func (l *Load) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var codes []string
	for c, n := range l.codes {
		codes = append(codes, fmt.Sprintf("%d×%d", n, c))
	}
	sort.Strings(codes)
	s := fmt.Sprintf("%d requests: %s; transport errors %v; examples %q", l.total, strings.Join(codes, " "), l.errors, l.failures)
	if l.overload != "" {
		s += fmt.Sprintf("; first 503 with Retry-After %q", l.overload)
	}
	return s
}

// Count is how many answers had status code.
func (l *Load) Count(code int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.codes[code]
}

// Failed counts the requests that did not get a 200: transport errors and
// any other status, 503 included.
func (l *Load) Failed() int {
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

// FailedBeyondOverload counts the requests that failed in a way no client
// should see: transport errors, any status but 200 and the answer the
// design allows under overload, 503 with Retry-After.
func (l *Load) FailedBeyondOverload() int {
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
