package testutil

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestPollerWaitsUntilTheConditionHolds(t *testing.T) {
	var n atomic.Int32
	WaitFor(t, "three checks", func() bool { return n.Add(1) == 3 })
	if got := n.Load(); got != 3 {
		t.Errorf("checked %d times, want 3 (stop once it holds)", got)
	}
}

// fatalTB records the message a failing poll gives.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Helper() {}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func failing(poll func(testing.TB)) string {
	tb := &fatalTB{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		poll(tb)
	}()
	<-done
	return tb.msg
}

func TestPollerFailsAfterTimeoutSayingWhy(t *testing.T) {
	p := Poller{Timeout: 30 * time.Millisecond, Interval: time.Millisecond}
	start := time.Now()
	msg := failing(func(tb testing.TB) { p.Until(tb, "the moon", func() bool { return false }) })
	if el := time.Since(start); el < 30*time.Millisecond {
		t.Errorf("gave up after %v, before the 30ms timeout", el)
	}
	if !strings.Contains(msg, "the moon") {
		t.Errorf("Until failed with %q, want what it waited for", msg)
	}
	msg = failing(func(tb testing.TB) {
		p.Await(tb, "the tide", func() (bool, string) { return false, "low" })
	})
	if !strings.Contains(msg, "the tide") || !strings.Contains(msg, "last state: low") {
		t.Errorf("Await failed with %q, want what and the last state", msg)
	}
	msg = failing(func(tb testing.TB) { p.Eventually(tb, func() error { return errors.New("still dry") }) })
	if !strings.Contains(msg, "still dry") {
		t.Errorf("Eventually failed with %q, want the last error", msg)
	}
}
