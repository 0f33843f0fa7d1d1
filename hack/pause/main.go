// Command pause is the sandbox process of a pod for container runtimes that
// cannot pull registry.k8s.io/pause (the real-node tests build it into the
// "pause" image). As a pod's first process it holds the pod's namespaces,
// reaps any orphan reparented to it, and exits 0 on SIGTERM or SIGINT.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	wait(notify())
	os.Exit(0)
}

func notify() chan os.Signal {
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)
	return sigs
}

// wait reaps children on every SIGCHLD and returns on SIGTERM or SIGINT.
func wait(sigs chan os.Signal) {
	for s := range sigs {
		reap()
		if s != syscall.SIGCHLD {
			return
		}
	}
}

// reap collects every exited child without blocking; signals coalesce, so
// one SIGCHLD may stand for many children.
func reap() {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if err == syscall.EINTR {
			continue
		}
		if pid <= 0 || err != nil {
			return
		}
	}
}
