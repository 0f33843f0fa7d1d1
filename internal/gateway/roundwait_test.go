package gateway

import (
	"testing"
	"time"
)

func TestRoundWait(t *testing.T) {
	for in, want := range map[time.Duration]string{
		828123 * time.Nanosecond:    "830µs",
		174123456 * time.Nanosecond: "174ms",
		2303644 * time.Microsecond:  "2.3s",
		12345 * time.Millisecond:    "12.3s",
	} {
		if got := RoundWait(in).String(); got != want {
			t.Errorf("RoundWait(%s) = %s, want %s", in, got, want)
		}
	}
}
