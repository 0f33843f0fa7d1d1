package nodeagent

import (
	"bufio"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
)

// maxLogBytes bounds what is kept per container for Logs; older output is
// dropped first, as the kubelet's log rotation would.
const maxLogBytes = 1 << 20

// logStore copies container output to Config.Output, line by line with a
// prefix, and keeps it per container for Agent.Logs.
type logStore struct {
	node string

	outMu sync.Mutex // one line at a time, so lines never interleave
	out   io.Writer

	mu   sync.Mutex
	logs map[string]*strings.Builder // "ns/pod/container" → output
}

func newLogStore(node string, out io.Writer) *logStore {
	return &logStore{node: node, out: out, logs: map[string]*strings.Builder{}}
}

func (s *logStore) write(line string) {
	s.outMu.Lock()
	defer s.outMu.Unlock()
	_, _ = io.WriteString(s.out, line)
}

// event reports what the agent did, e.g. "ns/pod: sending SIGTERM to app".
func (s *logStore) event(format string, args ...any) {
	s.write("nodeagent " + s.node + ": " + fmt.Sprintf(format, args...) + "\n")
}

// containerLine records one line of output of container key.
func (s *logStore) containerLine(key, line string) {
	if key == "" { // output nobody keeps, e.g. of exec probes
		return
	}
	s.mu.Lock()
	b := s.logs[key]
	if b == nil {
		b = &strings.Builder{}
		s.logs[key] = b
	}
	if b.Len()+len(line) > maxLogBytes {
		kept := b.String()[b.Len()/2:]
		b.Reset()
		b.WriteString(kept)
	}
	b.WriteString(line)
	s.mu.Unlock()
	s.write(key + " | " + line)
}

// copyLines reads r to EOF, recording each line of container key.
func (s *logStore) copyLines(key string, r io.Reader) {
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, err := br.ReadString('\n')
		if line != "" {
			if !strings.HasSuffix(line, "\n") {
				line += "\n"
			}
			s.containerLine(key, line)
		}
		if err != nil {
			return
		}
	}
}

func (s *logStore) get(key string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b := s.logs[key]; b != nil {
		return b.String()
	}
	return ""
}

// LogTo adapts t.Log to Config.Output. The agent writes one line per Write
// call; the trailing newline is dropped. Stop the agent before t ends
// (StartForTest does): t.Log panics after the test has finished.
func LogTo(t testing.TB) io.Writer { return tLogWriter{t} }

type tLogWriter struct{ t testing.TB }

func (w tLogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}
