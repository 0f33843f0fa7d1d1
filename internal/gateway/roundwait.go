package gateway

import "time"

// RoundWait keeps a wait readable in headers and messages, to about three
// significant digits: 828µs, 174ms, 2.3s (not 2.303644s).
func RoundWait(d time.Duration) time.Duration {
	switch {
	case d >= 10*time.Second:
		return d.Round(100 * time.Millisecond)
	case d >= time.Second:
		return d.Round(10 * time.Millisecond)
	case d >= 10*time.Millisecond:
		return d.Round(time.Millisecond)
	default:
		return d.Round(10 * time.Microsecond)
	}
}
