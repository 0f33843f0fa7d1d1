package realnode

import (
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
)

// HostState is what a node could change on the host if its isolation
// leaked: mounts, cgroups, the sysctls the kubelet and kube-proxy touch,
// iptables rules and network links. Take one before Start and one after
// Stop; Diff must be empty.
type HostState struct {
	Mounts   []string
	Cgroups  []string
	Sysctls  map[string]string
	Iptables []string
	Links    []string
}

// watchedSysctls: the kubelet's (hostSysctls) plus what kube-proxy and the
// CNI bridge set in their network namespace and must not set on the host.
var watchedSysctls = []string{
	"net/ipv4/ip_forward",
	"net/bridge/bridge-nf-call-iptables",
	"net/ipv4/conf/all/route_localnet",
	"net/netfilter/nf_conntrack_max",
	"net/netfilter/nf_conntrack_tcp_timeout_established",
	"net/netfilter/nf_conntrack_tcp_timeout_close_wait",
}

// TakeHostState snapshots the host as seen from this process's namespaces.
func TakeHostState() (*HostState, error) {
	s := &HostState{Sysctls: map[string]string{}}
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	for _, line := range strings.Split(strings.TrimSpace(string(mi)), "\n") {
		// Mount IDs change on remounts elsewhere; keep mount point, options,
		// fs type and source.
		f := strings.Fields(line)
		if len(f) >= 6 {
			s.Mounts = append(s.Mounts, strings.Join(f[3:], " "))
		}
	}
	hier, err := cgroupHierarchies()
	if err != nil {
		return nil, err
	}
	for _, h := range hier {
		// The top level of each hierarchy, where the kubelet, containerd
		// and runc would create theirs (kubepods, k8s.io, a cgroupRoot),
		// and any node's tree at any depth. Deeper cgroups belong to
		// whatever else runs on the host and come and go meanwhile.
		_ = filepath.WalkDir(h, func(path string, d os.DirEntry, err error) error {
			if err != nil || !d.IsDir() {
				return nil
			}
			rel, _ := filepath.Rel(h, path)
			if !strings.Contains(rel, "/") || strings.Contains(rel, "flint-realnode-") {
				s.Cgroups = append(s.Cgroups, path)
			}
			return nil
		})
	}
	for _, k := range append(slices.Sorted(maps.Keys(hostSysctls)), watchedSysctls...) {
		b, err := os.ReadFile("/proc/sys/" + k)
		if err != nil {
			s.Sysctls[k] = "(" + err.Error() + ")"
			continue
		}
		s.Sysctls[k] = strings.TrimSpace(string(b))
	}
	counters := regexp.MustCompile(`\[\d+:\d+\]`)
	for _, save := range []string{"iptables-save", "ip6tables-save"} {
		out, err := exec.Command(save).Output()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", save, err)
		}
		for _, line := range strings.Split(string(out), "\n") {
			if line != "" && !strings.HasPrefix(line, "#") {
				s.Iptables = append(s.Iptables, save+": "+counters.ReplaceAllString(line, ""))
			}
		}
	}
	out, err := exec.Command("ip", "-o", "link", "show").Output()
	if err != nil {
		return nil, fmt.Errorf("ip link: %w", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		// "N: name: <flags> ..." — index and name, not the changing counters.
		if f := strings.Fields(line); len(f) >= 2 {
			s.Links = append(s.Links, f[1])
		}
	}
	return s, nil
}

// Diff lists what differs from before, one line per difference.
func (after *HostState) Diff(before *HostState) []string {
	var d []string
	d = append(d, diffLists("mount", before.Mounts, after.Mounts)...)
	d = append(d, diffLists("cgroup", before.Cgroups, after.Cgroups)...)
	d = append(d, diffLists("iptables", before.Iptables, after.Iptables)...)
	d = append(d, diffLists("link", before.Links, after.Links)...)
	for k, v := range before.Sysctls {
		if after.Sysctls[k] != v {
			d = append(d, fmt.Sprintf("sysctl %s: %s, was %s", k, after.Sysctls[k], v))
		}
	}
	sort.Strings(d)
	return d
}

func diffLists(kind string, before, after []string) []string {
	count := map[string]int{}
	for _, s := range before {
		count[s]++
	}
	for _, s := range after {
		count[s]--
	}
	var d []string
	for s, c := range count {
		switch {
		case c < 0:
			d = append(d, fmt.Sprintf("%s added: %s", kind, s))
		case c > 0:
			d = append(d, fmt.Sprintf("%s removed: %s", kind, s))
		}
	}
	return d
}
