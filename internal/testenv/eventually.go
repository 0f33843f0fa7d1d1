package testenv

import (
	"testing"
	"time"

	"github.com/flint-dev/flint/internal/testutil"
)

// pollInterval is how often Eventually and Await check: short against the
// control plane's reaction times, long enough not to load the API server.
const pollInterval = 50 * time.Millisecond

// Eventually polls check until it returns nil, failing t with the last
// error after timeout.
func Eventually(t testing.TB, timeout time.Duration, check func() error) {
	t.Helper()
	testutil.Poller{Timeout: timeout, Interval: pollInterval}.Eventually(t, check)
}

// Await polls cond until it holds, failing t after timeout with what was
// awaited and the last state cond described.
func Await(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	testutil.Poller{Timeout: timeout, Interval: pollInterval}.Await(t, what, cond)
}
