// Package reload follows a value kept outside the process — a mounted
// Secret's file, usually — so a rotation needs no restart. The kubelet
// rewrites a mounted Secret (one mounted without subPath) in place within
// its sync period; a Value re-reads it at most every Interval, lazily, on
// the Get that finds it due, so an idle process reads nothing and a busy
// one reads once per Interval, whichever goroutine gets there first.
//
// A read that fails, or content that is empty or does not parse (a file
// being written by hand, a Secret edited half-way), keeps the value in use:
// a rotation can only ever switch to a value that parsed.
package reload

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flint-dev/flint/internal/secret"
)

// Interval is how often, at most, a Value reads its source again. The
// kubelet itself takes up to a minute or two (its sync period plus the
// cache's TTL) to update a mounted Secret.
const Interval = 10 * time.Second

// Value is the latest good parse of a source's content.
type Value[T any] struct {
	what  string // names the value in logs: "API keys"
	where string // names the source in logs: the file
	read  func() ([]byte, error)
	parse func([]byte) (T, error)
	log   *slog.Logger

	current atomic.Pointer[T]
	due     atomic.Int64 // UnixNano after which the source is read again

	mu      sync.Mutex // one read at a time; guards the fields below
	data    []byte     // the content current was parsed from
	failure string     // the last failure logged, so a steady one is logged once
}

// New reads the source once and returns its value, or an error when the
// first read or parse fails (a process should not start without it).
// what names the value and where its source, in logs.
func New[T any](what, where string, read func() ([]byte, error), parse func([]byte) (T, error), log *slog.Logger) (*Value[T], error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	v := &Value[T]{what: what, where: where, read: read, parse: parse, log: log}
	data, err := read()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", what, err)
	}
	val, err := v.parseContent(data)
	if err != nil {
		return nil, err
	}
	v.data = data
	v.current.Store(&val)
	v.due.Store(time.Now().Add(Interval).UnixNano())
	return v, nil
}

// File is New with the content of the file at path.
func File[T any](what, path string, parse func([]byte) (T, error), log *slog.Logger) (*Value[T], error) {
	return New(what, path, func() ([]byte, error) { return os.ReadFile(path) }, parse, log)
}

// Get returns the value in use, reading the source first when Interval
// has passed since the last read. Concurrent callers never wait for a
// read: the one that starts it waits, the others get the value in use.
func (v *Value[T]) Get() T {
	if time.Now().UnixNano() >= v.due.Load() && v.mu.TryLock() {
		v.refresh()
		v.mu.Unlock()
	}
	return *v.current.Load()
}

// refresh reads the source again if it is still due; v.mu is held.
func (v *Value[T]) refresh() {
	now := time.Now()
	if now.UnixNano() < v.due.Load() {
		return // another caller just did
	}
	v.due.Store(now.Add(Interval).UnixNano())
	data, err := v.read()
	if err != nil {
		v.fail(fmt.Sprintf("cannot read it: %v", err))
		return
	}
	if bytes.Equal(data, v.data) {
		v.failure = ""
		return
	}
	val, err := v.parseContent(data)
	if err != nil {
		v.fail(err.Error())
		return
	}
	v.data, v.failure = data, ""
	v.current.Store(&val)
	v.log.Info(v.what+" reloaded", "from", v.where)
}

func (v *Value[T]) parseContent(data []byte) (T, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		var zero T
		return zero, fmt.Errorf("%s: %s is empty", v.what, v.where)
	}
	return v.parse(data)
}

// fail logs a failed reload once for as long as it fails the same way.
func (v *Value[T]) fail(reason string) {
	if reason == v.failure {
		return
	}
	v.failure = reason
	v.log.Warn(v.what+": the new content is not usable; keeping the value in use", "from", v.where, "reason", reason)
}

// Tokens follows a file of secret.Tokens (one per line during a rotation:
// the first presented, every one accepted). what names the token in logs
// and errors: "gateway token".
func Tokens(what, path string, log *slog.Logger) (*Value[secret.Tokens], error) {
	return File(what, path, func(b []byte) (secret.Tokens, error) { return secret.ParseTokens(b, what+" in "+path) }, log)
}
