// Package procs builds Flint's binaries and runs them as child processes
// for the benchmarks, so every hop is measured as it runs in production.
package procs

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Build compiles the flint binary and the echo example into dir.
func Build(repoRoot, dir string) (flint, echo string, err error) {
	flint, echo = filepath.Join(dir, "flint"), filepath.Join(dir, "echo")
	for _, b := range []struct{ out, pkg string }{{flint, "./cmd/flint"}, {echo, "./examples/echo"}} {
		cmd := exec.Command("go", "build", "-o", b.out, b.pkg)
		cmd.Dir = repoRoot
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", "", fmt.Errorf("build %s: %w\n%s", b.pkg, err, out)
		}
	}
	return flint, echo, nil
}

// Group is a set of processes stopped together.
type Group struct{ cmds []*exec.Cmd }

// Start runs name with args and extra environment, output to logFile.
func (g *Group) Start(logFile string, env []string, name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	f, err := os.Create(logFile)
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	g.cmds = append(g.cmds, cmd)
	return nil
}

// Pid returns the process id of the i-th process started.
func (g *Group) Pid(i int) int { return g.cmds[i].Process.Pid }

// Stop terminates every process group and waits for them.
func (g *Group) Stop() {
	for _, c := range g.cmds {
		_ = syscall.Kill(-c.Process.Pid, syscall.SIGTERM)
	}
	for _, c := range g.cmds {
		done := make(chan struct{})
		go func() { _ = c.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
			<-done
		}
	}
}

// FreeAddr returns a free loopback address.
func FreeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// Port returns the port of a host:port address.
func Port(addr string) string {
	_, p, _ := strings.Cut(addr, ":")
	return p
}

// WaitOK polls url until it answers 200 or the timeout passes.
func WaitOK(url string, timeout time.Duration) error {
	c := &http.Client{Timeout: time.Second}
	defer c.CloseIdleConnections()
	deadline := time.Now().Add(timeout)
	for {
		res, err := c.Get(url)
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not answer 200 within %s (last error: %v)", url, timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
