// Package lineprefix copies a child process's output to a shared log
// whole lines at a time, each after a prefix naming the child ("echo-1 | "),
// as docker compose does, so the lines of children running at once never
// interleave mid-line. The local runtime uses it for its replicas, the
// stdio bridge for its sessions' servers.
package lineprefix

import (
	"bytes"
	"io"
	"strings"
	"sync"
)

// maxLine is where a line that never ends (a runaway child) is cut.
const maxLine = 64 << 10

// Writer writes each whole line it is given to out after its prefix; a
// partial line waits for its end (or Flush). Writers sharing one out share
// one mutex, which also guards each Writer's partial line: exec.Cmd sets
// ProcessState before its copying goroutines have finished, so a Flush
// after the child has exited can meet a last Write.
type Writer struct {
	mu     *sync.Mutex
	out    io.Writer
	prefix []byte
	buf    []byte
	last   string // the last non-empty line, for failure messages
}

// New returns a Writer to out that starts each line with prefix; mu
// guards out and is shared by every Writer to it.
func New(out io.Writer, mu *sync.Mutex, prefix string) *Writer {
	return &Writer{mu: mu, out: out, prefix: []byte(prefix)}
}

// Write copies the whole lines of p (and any before it) to out. It never
// fails: a child's output must not stop because its log could not be
// written.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.emit(w.buf[:i+1])
		w.buf = w.buf[i+1:]
	}
	if len(w.buf) > maxLine {
		w.emit(append(w.buf, '\n'))
		w.buf = w.buf[:0]
	}
	return len(p), nil
}

// Flush writes a partial last line, ending it; call it once the child's
// output has ended.
func (w *Writer) Flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		w.emit(append(w.buf, '\n'))
		w.buf = nil
	}
}

// LastLine returns the last non-empty line written, trimmed.
func (w *Writer) LastLine() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.last
}

// emit writes one line; w.mu is held.
func (w *Writer) emit(line []byte) {
	if l := strings.TrimSpace(string(line)); l != "" {
		w.last = l
	}
	_, _ = w.out.Write(append(append([]byte(nil), w.prefix...), line...))
}
