package bridge

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// On Kubernetes the bridge is its container's PID 1 (docs/mcp.md): the
// kernel reparents every orphan in the container to it, so a stdio server
// that leaves a process behind (a shell wrapper's background job, a
// double-forked helper) would fill the PID table with zombies unless the
// bridge reaps them. It must reap only those: its own children's exit
// statuses belong to exec.Cmd.Wait, which reports how a session's server
// ended. So the reaper does not wait(-1); it lists its zombie children in
// /proc and reaps the ones it did not start. Starting a child and reaping
// hold one lock, so a child that exits at once is known before any sweep
// can see its zombie.
//
// Signals: the bridge forwards none. Its children run in process groups of
// their own (startChild), so a signal to the bridge or its group reaches
// them only through the bridge's shutdown, in the spec's order; orphans it
// reaps were never its to signal.

// sweepEvery backs up SIGCHLD, which the kernel coalesces and which may
// arrive while a sweep is running.
const sweepEvery = time.Second

type orphanReaper struct {
	mu     sync.Mutex
	own    map[int]bool // children the bridge started and has not waited for
	reaped atomic.Int64
}

func newOrphanReaper() *orphanReaper { return &orphanReaper{own: map[int]bool{}} }

// starting locks out sweeps while a child is started; call the returned
// function with the child's pid (0 if none started) once it is known.
func (r *orphanReaper) starting() (started func(pid int)) {
	r.mu.Lock()
	return func(pid int) {
		if pid > 0 {
			r.own[pid] = true
		}
		r.mu.Unlock()
	}
}

// waited forgets a child whose exit status exec.Cmd has collected; its pid
// may now be reused by anyone.
func (r *orphanReaper) waited(pid int) {
	r.mu.Lock()
	delete(r.own, pid)
	r.mu.Unlock()
}

// mustReap tells whether orphans reach this process: it is PID 1 of its
// pid namespace, or a child subreaper (prctl PR_SET_CHILD_SUBREAPER).
func mustReap() bool {
	if os.Getpid() == 1 {
		return true
	}
	// PR_GET_CHILD_SUBREAPER writes the flag through a pointer.
	var flag int32
	err := unix.Prctl(unix.PR_GET_CHILD_SUBREAPER, uintptr(unsafe.Pointer(&flag)), 0, 0, 0)
	return err == nil && flag != 0
}

// run sweeps on every SIGCHLD and every sweepEvery until ctx ends.
func (r *orphanReaper) run(ctx context.Context, log *slog.Logger) {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGCHLD)
	defer signal.Stop(sigs)
	tick := time.NewTicker(sweepEvery)
	defer tick.Stop()
	for {
		if n := r.sweep(); n > 0 {
			log.Debug("reaped orphaned processes", "count", n, "total", r.reaped.Load())
		}
		select {
		case <-ctx.Done():
			return
		case <-sigs:
		case <-tick.C:
		}
	}
}

// sweep reaps every zombie child of this process that it did not start.
func (r *orphanReaper) sweep() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, pid := range zombieChildren(os.Getpid()) {
		if r.own[pid] {
			continue
		}
		var ws syscall.WaitStatus
		if got, err := syscall.Wait4(pid, &ws, syscall.WNOHANG, nil); err == nil && got == pid {
			n++
		}
	}
	r.reaped.Add(int64(n))
	return n
}

// zombieChildren lists the processes whose parent is ppid and that have
// exited but not been waited for, from /proc/<pid>/stat.
func zombieChildren(ppid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // gone meanwhile
		}
		state, parent, ok := parseStat(stat)
		if ok && state == 'Z' && parent == ppid {
			out = append(out, pid)
		}
	}
	return out
}

// parseStat reads the state and parent pid from /proc/<pid>/stat:
// "pid (comm) S ppid ...", where comm may itself hold spaces and parentheses.
func parseStat(stat []byte) (state byte, ppid int, ok bool) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, 0, false
	}
	fields := bytes.Fields(stat[i+1:])
	if len(fields) < 2 || len(fields[0]) != 1 {
		return 0, 0, false
	}
	ppid, err := strconv.Atoi(string(fields[1]))
	if err != nil {
		return 0, 0, false
	}
	return fields[0][0], ppid, true
}

// startReaper reaps orphans while the bridge runs, when they reach it; the
// returned function stops it.
func (b *Bridge) startReaper() (stop func()) {
	if !mustReap() {
		return func() {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		b.reaper.run(ctx, b.log)
	}()
	b.log.Info("reaping orphaned processes", "pid", os.Getpid())
	return func() { cancel(); <-done }
}

// pidOf is the pid of a started command, or 0.
func pidOf(cmd *exec.Cmd) int {
	if cmd.Process == nil {
		return 0
	}
	return cmd.Process.Pid
}
