package testenv

import (
	"testing"
	"time"
)

// pollInterval is how often Eventually and Await check: short against the
// control plane's reaction times, long enough not to load the API server.
const pollInterval = 50 * time.Millisecond

// Eventually polls check until it returns nil, failing t with the last
// error after timeout.
func Eventually(t testing.TB, timeout time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %v", timeout, err)
		}
		time.Sleep(pollInterval)
	}
}

// Await polls cond until it holds, failing t after timeout with what was
// awaited and the last state cond described.
func Await(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s; last state: %s", timeout, what, state)
		}
		time.Sleep(pollInterval)
	}
}
