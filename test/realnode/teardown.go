package realnode

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Stop tears the node down by PID, in the reverse order of a node's
// dependencies: kube-proxy, kubelet and the control plane first, then every
// process left in the node's cgroups (the pods' containers and sandboxes),
// containerd and its shims, the namespace holder; then the cgroups and the
// node's directory. It reports everything it could not undo.
func (n *Node) Stop() error {
	if n.stopped {
		return nil
	}
	n.stopped = true
	var errs []error
	order := []string{"coredns", "kube-proxy", "kubelet", "kube-scheduler", "kube-controller-manager", "kube-apiserver", "etcd"}
	for _, name := range order {
		for _, p := range n.procs {
			if p.name == name {
				if err := p.stop(10 * time.Second); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	if err := n.killCgroupProcs(); err != nil {
		errs = append(errs, err)
	}
	for _, p := range n.procs {
		if p.name == "containerd" {
			if err := p.stop(10 * time.Second); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if n.Dir != "" {
		// Shims re-parent to init; they name containerd's socket address.
		if err := killMatching(n.containerdDir()); err != nil {
			errs = append(errs, err)
		}
	}
	if n.holder != nil && n.holder.Process != nil {
		_ = n.holder.Process.Kill()
		_ = n.holder.Wait()
	}
	if err := n.removeCgroups(); err != nil {
		errs = append(errs, err)
	}
	if n.Dir != "" {
		if left := processesMentioning(n.Dir); len(left) > 0 {
			errs = append(errs, fmt.Errorf("processes still running from %s: %v", n.Dir, left))
		}
		if err := os.RemoveAll(n.Dir); err != nil {
			errs = append(errs, fmt.Errorf("remove node directory: %w", err))
		}
	}
	if n.reaper != nil {
		if err := n.reaper.Release(); err != nil {
			errs = append(errs, fmt.Errorf("reaper: %w", err))
		}
	}
	return errors.Join(errs...)
}

// killCgroupProcs SIGKILLs every process under the node's cgroup root until
// none is left.
func (n *Node) killCgroupProcs() error {
	if n.CgroupRoot == "" {
		return nil
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		pids := n.cgroupPids()
		if len(pids) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("processes left in %s: %v", n.CgroupRoot, pids)
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (n *Node) cgroupPids() []int {
	var pids []int
	root := "/sys/fs/cgroup/pids" + n.CgroupRoot
	_ = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() != "cgroup.procs" {
			return nil
		}
		b, _ := os.ReadFile(path)
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil {
				pids = append(pids, pid)
			}
		}
		return nil
	})
	return pids
}

// removeCgroups removes the node's cgroup root in every hierarchy, deepest
// directories first (cgroupfs only removes empty cgroups, one by one).
func (n *Node) removeCgroups() error {
	if n.CgroupRoot == "" {
		return nil
	}
	ctrls, err := cgroupHierarchies()
	if err != nil {
		return err
	}
	var errs []error
	for _, c := range ctrls {
		var dirs []string
		_ = filepath.WalkDir(c+n.CgroupRoot, func(path string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, path)
			}
			return nil
		})
		slices.Reverse(dirs)
		for _, d := range dirs {
			var err error
			for i := 0; i < 50; i++ { // a just-killed task may linger for a moment
				if err = syscall.Rmdir(d); err == nil || errors.Is(err, syscall.ENOENT) {
					err = nil
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("remove cgroup %s: %w", d, err))
			}
		}
	}
	return errors.Join(errs...)
}

// processesMentioning lists the PIDs whose command line contains s.
func processesMentioning(s string) []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	self := os.Getpid()
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && bytes.Contains(b, []byte(s)) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// killMatching SIGKILLs processes whose command line contains s and waits
// for them to go.
func killMatching(s string) error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		pids := processesMentioning(s)
		if len(pids) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("processes mentioning %s survived SIGKILL: %v", s, pids)
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
