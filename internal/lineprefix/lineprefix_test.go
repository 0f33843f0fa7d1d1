package lineprefix

import (
	"bytes"
	"strings"
	"sync"
	"testing"
)

func TestWholeLinesWithPrefix(t *testing.T) {
	var out bytes.Buffer
	var mu sync.Mutex
	w := New(&out, &mu, "a | ")
	for _, p := range []string{"one\ntw", "o\n", "", "three", "\n\nfour"} {
		if n, err := w.Write([]byte(p)); n != len(p) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", p, n, err)
		}
	}
	if got, want := out.String(), "a | one\na | two\na | three\na | \n"; got != want {
		t.Fatalf("before Flush: %q, want %q (a partial line waits)", got, want)
	}
	if got := w.LastLine(); got != "three" {
		t.Fatalf("LastLine %q, want the last non-empty line %q", got, "three")
	}
	w.Flush()
	w.Flush()
	if got, want := out.String(), "a | one\na | two\na | three\na | \na | four\n"; got != want {
		t.Fatalf("after Flush: %q, want %q", got, want)
	}
	if got := w.LastLine(); got != "four" {
		t.Fatalf("LastLine %q after Flush, want %q", got, "four")
	}
}

func TestRunawayLineIsCut(t *testing.T) {
	var out bytes.Buffer
	var mu sync.Mutex
	w := New(&out, &mu, "x | ")
	_, _ = w.Write(bytes.Repeat([]byte("y"), maxLine+1))
	if got := out.String(); !strings.HasPrefix(got, "x | yyy") || !strings.HasSuffix(got, "y\n") || len(got) != len("x | ")+maxLine+2 {
		t.Fatalf("a line past %d bytes is written ended (%d bytes out)", maxLine, len(got))
	}
}

// TestWritersSharingOutputNeverInterleave is meant for -race: writers of
// several children at once, each line whole.
func TestWritersSharingOutputNeverInterleave(t *testing.T) {
	var out bytes.Buffer
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, name := range []string{"a", "b", "c"} {
		w := New(&out, &mu, name+" | ")
		wg.Go(func() {
			for range 200 {
				_, _ = w.Write([]byte(name + name))
				_, _ = w.Write([]byte(name + "\n"))
			}
		})
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 600 {
		t.Fatalf("%d lines, want 600", len(lines))
	}
	for _, l := range lines {
		n := l[:1]
		if l != n+" | "+n+n+n {
			t.Fatalf("line %q is not one child's whole line", l)
		}
	}
}

// exec.Cmd sets ProcessState before its copying goroutine has written the
// last output, so a Flush after the child exits can meet that Write: the
// race detector must see no race, and the line must come out whole.
func TestFlushMeetsALastWrite(t *testing.T) {
	var out bytes.Buffer
	var mu sync.Mutex
	w := New(&out, &mu, "c | ")
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = w.Write([]byte("last words"))
	}()
	w.Flush()
	<-done
	w.Flush()
	if got := out.String(); got != "c | last words\n" {
		t.Fatalf("output %q, want the last line once, whole", got)
	}
}
