package reload

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/flint-dev/flint/internal/testutil"
)

// words parses non-empty content as its lines; "bad" anywhere fails.
func words(b []byte) ([]string, error) {
	if bytes.Contains(b, []byte("bad")) {
		return nil, errors.New("bad line")
	}
	return strings.Fields(string(b)), nil
}

func write(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestFileFollowsItsContentAtMostEveryInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "f")
		write(t, path, "a\n")
		var logs testutil.SyncBuffer
		v, err := File("words", path, words, slog.New(slog.NewTextHandler(&logs, nil)))
		if err != nil {
			t.Fatal(err)
		}
		write(t, path, "a\nb\n")
		time.Sleep(Interval - time.Millisecond)
		if got := v.Get(); len(got) != 1 {
			t.Fatalf("read again before Interval: %q", got)
		}
		time.Sleep(time.Millisecond)
		if got := v.Get(); len(got) != 2 || got[1] != "b" {
			t.Fatalf("after Interval: %q", got)
		}
		if !strings.Contains(logs.String(), "words reloaded") {
			t.Errorf("no reload logged:\n%s", logs.String())
		}
	})
}

func TestFileKeepsTheValueWhenTheNewContentIsUnusable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "f")
		write(t, path, "a\n")
		var logs testutil.SyncBuffer
		v, err := File("words", path, words, slog.New(slog.NewTextHandler(&logs, nil)))
		if err != nil {
			t.Fatal(err)
		}
		for _, step := range []struct {
			name    string
			prepare func()
		}{
			{"empty", func() { write(t, path, " \n") }},
			{"does not parse", func() { write(t, path, "bad\n") }},
			{"missing", func() { os.Remove(path) }},
		} {
			step.prepare()
			time.Sleep(Interval)
			if got := v.Get(); len(got) != 1 || got[0] != "a" {
				t.Fatalf("%s: value %q, want the previous one", step.name, got)
			}
		}
		// A steady failure is logged once, not every Interval.
		time.Sleep(3 * Interval)
		v.Get()
		if n := strings.Count(logs.String(), "keeping the value in use"); n != 3 {
			t.Errorf("%d failures logged, want 3 (one per kind):\n%s", n, logs.String())
		}
		write(t, path, "c\n")
		time.Sleep(Interval)
		if got := v.Get(); len(got) != 1 || got[0] != "c" {
			t.Fatalf("after the file is good again: %q", got)
		}
	})
}

func TestFileRefusesToStartWithoutAValue(t *testing.T) {
	dir := t.TempDir()
	if _, err := File("words", filepath.Join(dir, "missing"), words, nil); err == nil {
		t.Error("missing file accepted")
	}
	write(t, filepath.Join(dir, "empty"), "\n")
	if _, err := File("words", filepath.Join(dir, "empty"), words, nil); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Errorf("empty file: %v", err)
	}
}

// TestConcurrentGetsReadOnce: callers that find the value due at the same
// moment read the source once between them, and none waits for the read.
func TestConcurrentGetsReadOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		reads := 0
		release := make(chan struct{})
		read := func() ([]byte, error) {
			mu.Lock()
			reads++
			n := reads
			mu.Unlock()
			if n > 1 {
				<-release // the reload blocks: others must not wait on it
			}
			return []byte("x"), nil
		}
		v, err := New("words", "test", read, words, nil)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(Interval)
		go v.Get() // starts the read and blocks in it
		synctest.Wait()
		var wg sync.WaitGroup
		for range 10 {
			wg.Go(func() { v.Get() })
		}
		wg.Wait() // would hang if they waited for the read
		close(release)
		synctest.Wait()
		if reads != 2 {
			t.Errorf("%d reads, want 2 (start + one reload)", reads)
		}
	})
}

// BenchmarkGet is the cost a request pays to read a followed value (the
// gateway token on every forwarded request, the API keys on every
// authenticated one) when no re-read is due.
func BenchmarkGet(b *testing.B) {
	path := filepath.Join(b.TempDir(), "f")
	if err := os.WriteFile(path, []byte("a b\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	v, err := File("words", path, words, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			_ = v.Get()
		}
	})
}
