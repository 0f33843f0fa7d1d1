package proxy

import (
	"slices"
	"strings"
	"testing"
)

func TestAppendForwardedFor(t *testing.T) {
	long := strings.Repeat("10.0.0.1, ", 12) + "10.0.0.2"
	for _, tc := range []struct {
		prior []string
		want  string
	}{
		{nil, "127.0.0.1"},
		{[]string{"203.0.113.7"}, "203.0.113.7, 127.0.0.1"},
		{[]string{"203.0.113.7, 10.1.2.3", "2001:db8::1"}, "203.0.113.7, 10.1.2.3, 2001:db8::1, 127.0.0.1"},
		{[]string{long}, long + ", 127.0.0.1"}, // longer than the inline buffer
	} {
		got := appendForwardedFor(tc.prior, "127.0.0.1")
		if !slices.Equal(got, []string{tc.want}) {
			t.Errorf("appendForwardedFor(%q) = %q, want %q", tc.prior, got, tc.want)
		}
		// Appending to the header line must not reach into shared memory.
		if cap(got) != 1 {
			t.Errorf("appendForwardedFor(%q) has capacity %d, want 1", tc.prior, cap(got))
		}
	}
	// Values built one after another stay independent.
	a := appendForwardedFor([]string{"192.0.2.1"}, "127.0.0.1")
	b := appendForwardedFor([]string{"192.0.2.2"}, "127.0.0.2")
	if a[0] != "192.0.2.1, 127.0.0.1" || b[0] != "192.0.2.2, 127.0.0.2" {
		t.Errorf("values interfere: %q %q", a, b)
	}
	prior := []string{"192.0.2.1"}
	if n := testing.AllocsPerRun(100, func() { appendForwardedFor(prior, "127.0.0.1") }); n != 1 {
		t.Errorf("%v allocations behind the gateway, want 1", n)
	}
}
