// Package testutil holds small helpers that tests across packages share.
// It imports only the standard library, so any test can use it without
// pulling in envtest and a kube-apiserver (internal/testenv is for those).
// Only tests and test harnesses (internal/testenv) import it.
package testutil

import (
	"bytes"
	"net"
	"sync"
	"testing"
)

// SyncBuffer is a bytes.Buffer that several goroutines may write and read
// at once, such as a child process's stdout and stderr while the test
// reads what it has printed so far.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p to the buffer.
func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// FreeAddr is a loopback address nothing listens on (yet): the port was
// free a moment ago, for a server a test starts later or for a replica that
// refuses connections.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}
