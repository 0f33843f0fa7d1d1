package testutil

import (
	"fmt"
	"testing"
	"time"
)

// Poller checks a condition every Interval until it holds, and fails the
// test once Timeout has passed without it. Tests of things in this process
// (a counter, a server's state) use WaitFor; tests that ask an API server
// use internal/testenv's Eventually and Await, which poll less often.
type Poller struct {
	Timeout  time.Duration
	Interval time.Duration
}

// Eventually polls check until it returns nil, failing t with the last
// error after p.Timeout.
func (p Poller) Eventually(t testing.TB, check func() error) {
	t.Helper()
	deadline := time.Now().Add(p.Timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %v", p.Timeout, err)
		}
		time.Sleep(p.Interval)
	}
}

// Await polls cond until it holds, failing t after p.Timeout with what was
// awaited and the last state cond described.
func (p Poller) Await(t testing.TB, what string, cond func() (bool, string)) {
	t.Helper()
	p.Eventually(t, func() error {
		if ok, state := cond(); !ok {
			return fmt.Errorf("waiting for %s; last state: %s", what, state)
		}
		return nil
	})
}

// Until polls cond until it holds, failing t after p.Timeout with what was
// awaited.
func (p Poller) Until(t testing.TB, what string, cond func() bool) {
	t.Helper()
	p.Eventually(t, func() error {
		if !cond() {
			return fmt.Errorf("timed out waiting for %s", what)
		}
		return nil
	})
}

// Quick polls every 5ms for up to 10s: for conditions in this process that
// settle within milliseconds, with room for a loaded CI machine.
var Quick = Poller{Timeout: 10 * time.Second, Interval: 5 * time.Millisecond}

// WaitFor polls cond with Quick until it holds, failing t after 10s with
// what was awaited.
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	Quick.Until(t, what, cond)
}
