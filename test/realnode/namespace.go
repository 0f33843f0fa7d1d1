package realnode

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// hostSysctls are the host-wide sysctls the kubelet sets to values it
// wants. Inside the private mount namespace a file holding that value is
// bind-mounted over each, so the kubelet reads what it wants and never
// writes the host's.
var hostSysctls = map[string]string{
	"kernel/panic":              "10",
	"kernel/panic_on_oops":      "1",
	"vm/overcommit_memory":      "1",
	"vm/panic_on_oom":           "0",
	"kernel/keys/root_maxkeys":  "1000000",
	"kernel/keys/root_maxbytes": "25000000",
}

// setupScript prepares the namespaces: the node's network (a veth pair with
// both ends inside, no default route: only the Service CIDR is routed, so
// kube-proxy's DNAT applies to ClusterIP traffic and nothing can leave),
// a private /run, /var/lib and /var/log (overlays whose upper layer is in
// the node's directory, so nothing the kubelet, CNI or containerd writes
// there reaches the host), /etc/hosts and /etc/resolv.conf of its own, and
// the sysctl shadows. $1 is the node's directory.
const setupScript = `set -e
d=$1
hostname ` + NodeName + `
ip link set lo up
ip link add veth-node type veth peer name veth-peer
ip addr add ` + NodeIP + `/24 dev veth-node
ip link set veth-node up
ip link set veth-peer up
ip route add ` + ServiceCIDR + ` dev veth-node src ` + NodeIP + `
echo 1 > /proc/sys/net/ipv4/ip_forward
echo 1 > /proc/sys/net/bridge/bridge-nf-call-iptables
mount -t tmpfs -o mode=0755 tmpfs /run
for dir in /var/lib /var/log; do
  o=$d/overlay$(echo $dir | tr / _)
  mkdir -p $o/upper $o/work
  mount -t overlay overlay -o lowerdir=$dir,upperdir=$o/upper,workdir=$o/work $dir
done
mount --bind $d/etc/hosts /etc/hosts
mount --bind $d/etc/resolv.conf /etc/resolv.conf
for f in $d/sysctl/*; do
  mount --bind $f /proc/sys/$(basename $f | tr . /)
done
`

func (n *Node) setupNamespace() error {
	etc := filepath.Join(n.Dir, "etc")
	sysctl := filepath.Join(n.Dir, "sysctl")
	for _, d := range []string{etc, sysctl, filepath.Join(n.Dir, "logs")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	files := map[string]string{
		filepath.Join(etc, "hosts"): fmt.Sprintf("127.0.0.1 localhost\n%s %s\n", NodeIP, NodeName),
		// CoreDNS listens on every address of the namespace: host lookups of
		// cluster names work, anything else fails at once (no upstream).
		filepath.Join(etc, "resolv.conf"): "nameserver 127.0.0.1\n",
	}
	for k, v := range hostSysctls {
		files[filepath.Join(sysctl, strings.ReplaceAll(k, "/", "."))] = v + "\n"
	}
	for p, body := range files {
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			return err
		}
	}
	return n.run("/bin/sh", "-c", setupScript, "setup", n.Dir)
}

// cgroupControllers are the cgroup v1 hierarchies the kubelet uses; it
// requires its cgroupRoot to exist in each.
func cgroupControllers() ([]string, error) {
	entries, err := os.ReadDir("/sys/fs/cgroup")
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		switch e.Name() {
		case "cpu", "cpuacct", "cpuset", "memory", "pids", "blkio", "devices", "freezer", "hugetlb", "systemd":
			out = append(out, filepath.Join("/sys/fs/cgroup", e.Name()))
		}
	}
	return out, nil
}

// cgroupHierarchies are every mounted hierarchy, including cgroup v2's
// "unified" one, where the kubelet mirrors its tree on a hybrid host: all
// must be cleaned up and watched.
func cgroupHierarchies() ([]string, error) {
	entries, err := os.ReadDir("/sys/fs/cgroup")
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() {
			out = append(out, filepath.Join("/sys/fs/cgroup", e.Name()))
		}
	}
	return out, nil
}

// makeCgroupRoot creates the per-run cgroup root in every hierarchy, so
// two runs never share a kubepods tree and teardown knows what to remove.
func (n *Node) makeCgroupRoot() error {
	ctrls, err := cgroupControllers()
	if err != nil {
		return err
	}
	for _, c := range ctrls {
		dir := c + n.CgroupRoot
		if err := os.Mkdir(dir, 0o755); err != nil && !os.IsExist(err) {
			return fmt.Errorf("create cgroup %s: %w", dir, err)
		}
		if filepath.Base(c) == "cpuset" {
			// A new cpuset cgroup starts with no CPUs and no memory nodes.
			for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
				v, err := os.ReadFile(filepath.Join(c, f))
				if err != nil {
					return err
				}
				if err := os.WriteFile(filepath.Join(dir, f), v, 0o644); err != nil {
					return fmt.Errorf("init %s/%s: %w", dir, f, err)
				}
			}
		}
	}
	return nil
}
