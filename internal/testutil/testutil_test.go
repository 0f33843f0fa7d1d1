package testutil

import (
	"strings"
	"sync"
	"testing"
)

// TestSyncBufferConcurrentWrites is meant for -race: writers and a reader
// at once, and no write lost.
func TestSyncBufferConcurrentWrites(t *testing.T) {
	var b SyncBuffer
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				_, _ = b.Write([]byte("x\n"))
				_ = b.String()
			}
		})
	}
	wg.Wait()
	if n := strings.Count(b.String(), "x\n"); n != 800 {
		t.Fatalf("%d lines written, want 800", n)
	}
}
