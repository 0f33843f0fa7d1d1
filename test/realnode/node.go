// Package realnode runs a real single-node Kubernetes for tests: etcd,
// kube-apiserver, kube-controller-manager, kube-scheduler, containerd + runc,
// a CNI bridge, kubelet, kube-proxy (iptables) and CoreDNS, all inside a
// network+mount+UTS namespace it creates and removes again.
//
// The test process stays on the host: it reaches the node through a dialer
// that opens sockets inside the namespace (Node.DialContext), which is how
// it talks to the API server, pod IPs and ClusterIPs. The namespace has no
// default route, so nothing started in it can reach anything outside.
// Everything the node writes lives under one temporary directory; the host's
// processes, mounts, cgroups, sysctls and iptables are left as they were
// (see HostState).
//
// See docs/kubernetes.md and ../shared/reference/real-node.md.
package realnode

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/flint-dev/flint/internal/images"
	"github.com/flint-dev/flint/internal/testutil/reaper"
)

// The node's addresses. They only exist inside its namespace, so every
// run (and every concurrent run) uses the same ones.
const (
	NodeIP        = "10.88.0.2"
	NodeName      = "flint-node"
	ServiceCIDR   = "10.96.0.0/24"
	APIServiceIP  = "10.96.0.1"  // the kubernetes Service
	DNSServiceIP  = "10.96.0.10" // kube-system/kube-dns, served by CoreDNS
	PodCIDR       = "10.244.0.0/24"
	ClusterDomain = "cluster.local"
	apiPort       = 6443
)

// Config says where the binaries are and what to import.
type Config struct {
	// BinDir holds kube-apiserver, kube-controller-manager, etcd, kubelet,
	// kube-proxy, kube-scheduler and coredns (hack/kube-binaries.sh --node).
	BinDir string
	// Images are imported into containerd before the kubelet starts, in
	// addition to the pause and test-server images the harness builds.
	Images []Image
	// Log receives progress lines (e.g. testing's Logf); nil discards them.
	Log func(format string, args ...any)
}

// Timings are what starting the node took.
type Timings struct {
	Images    time.Duration // building and importing images
	NodeReady time.Duration // namespace created → Node Ready
	DNSReady  time.Duration // namespace created → CoreDNS answering
}

// Node is a running node. Stop it exactly once.
type Node struct {
	Dir        string // all state: certificates, configs, logs, containerd, etcd
	ID         string // unique per run: names the cgroup root
	CgroupRoot string // kubelet's cgroupRoot, e.g. /flint-realnode-0a1b2c3d
	Kube       kubernetes.Interface
	REST       *rest.Config // admin (system:masters), dialing into the namespace
	Timings    Timings

	cfg     Config
	holder  *exec.Cmd
	netns   string
	dialer  nsDialer
	procs   []*proc // in start order
	pki     *pki
	creds   *creds
	reaper  *reaper.Reaper
	images  []Image
	built   *images.Result
	stopped bool
}

// Start builds the images, creates the namespace and starts every
// component, returning when the Node is Ready and CoreDNS answers. On error
// everything already started is stopped again.
func Start(ctx context.Context, cfg Config) (n *Node, err error) {
	if cfg.Log == nil {
		cfg.Log = func(string, ...any) {}
	}
	if err := Prerequisites(cfg.BinDir); err != nil {
		return nil, err
	}
	id := make([]byte, 4)
	_, _ = rand.Read(id)
	n = &Node{ID: hex.EncodeToString(id), cfg: cfg}
	n.CgroupRoot = "/flint-realnode-" + n.ID
	if n.Dir, err = os.MkdirTemp("", "flint-realnode-"+n.ID+"-"); err != nil {
		return nil, err
	}
	if n.reaper, err = startReaper(n.Dir, n.CgroupRoot); err != nil {
		os.RemoveAll(n.Dir)
		return nil, err
	}
	// node, not n: an error return sets n to nil before this runs.
	node := n
	defer func() {
		if err != nil {
			err = errors.Join(err, node.Stop())
		}
	}()
	t0 := time.Now()
	imgDir := filepath.Join(n.Dir, "images")
	if err := os.MkdirAll(imgDir, 0o755); err != nil {
		return nil, err
	}
	built, tarballs, err := buildImages(ctx, imgDir, cfg.Log)
	if err != nil {
		return nil, err
	}
	n.built = built
	n.images = append(tarballs, cfg.Images...)
	n.Timings.Images = time.Since(t0) // import time is added below

	start := time.Now()
	if err := n.startHolder(); err != nil {
		return nil, err
	}
	if err := n.setupNamespace(); err != nil {
		return nil, err
	}
	if err := n.makeCgroupRoot(); err != nil {
		return nil, err
	}
	if err := n.startControlPlane(ctx); err != nil {
		return nil, err
	}
	if err := n.startContainerd(ctx); err != nil {
		return nil, err
	}
	ti := time.Now()
	for _, img := range n.images {
		if err := n.Import(ctx, img); err != nil {
			return nil, err
		}
	}
	n.Timings.Images += time.Since(ti)
	if err := n.startNode(ctx); err != nil {
		return nil, err
	}
	if err := n.waitNodeReady(ctx); err != nil {
		return nil, err
	}
	n.Timings.NodeReady = time.Since(start)
	if err := n.startDNS(ctx); err != nil {
		return nil, err
	}
	n.Timings.DNSReady = time.Since(start)
	return n, nil
}

// SystemPrerequisites reports what this machine lacks to run a node (root,
// the Debian packages), or nil. Check it before building binaries.
func SystemPrerequisites() error {
	if os.Geteuid() != 0 {
		return errors.New("not root: the node needs namespaces, mounts, cgroups and iptables (run as root)")
	}
	var missing []string
	for _, c := range []string{"containerd", "containerd-shim-runc-v2", "runc", "ctr", "iptables", "iptables-save", "conntrack", "nsenter", "unshare", "ip", "mount"} {
		if _, err := exec.LookPath(c); err != nil {
			missing = append(missing, c)
		}
	}
	for _, p := range []string{"/usr/lib/cni/bridge", "/usr/lib/cni/host-local", "/usr/lib/cni/loopback", "/usr/lib/cni/portmap"} {
		if _, err := os.Stat(p); err != nil {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing %s (as root: apt-get install -y containerd runc containernetworking-plugins iptables conntrack)", strings.Join(missing, ", "))
	}
	return nil
}

// Prerequisites is SystemPrerequisites plus the binaries in binDir.
func Prerequisites(binDir string) error {
	if err := SystemPrerequisites(); err != nil {
		return err
	}
	var missing []string
	for _, b := range []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy", "coredns"} {
		if st, err := os.Stat(filepath.Join(binDir, b)); err != nil || st.Mode()&0o111 == 0 {
			missing = append(missing, b)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing %s in %s: run hack/kube-binaries.sh --node", strings.Join(missing, ", "), binDir)
	}
	return nil
}

// startHolder starts the process that owns the namespaces. unshare(1)
// execs sleep, so the holder's PID is the namespaces' first member.
func (n *Node) startHolder() error {
	n.holder = exec.Command("unshare", "--net", "--mount", "--uts", "--propagation", "private", "sleep", "infinity")
	n.holder.SysProcAttr = procAttr()
	if err := n.holder.Start(); err != nil {
		return fmt.Errorf("start namespace holder: %w", err)
	}
	n.netns = fmt.Sprintf("/proc/%d/ns/net", n.holder.Process.Pid)
	n.dialer = nsDialer{netns: n.netns}
	// unshare has entered the namespaces once /proc shows a different one.
	host, _ := os.Readlink("/proc/self/ns/mnt")
	for i := 0; i < 200; i++ {
		if ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", n.holder.Process.Pid)); err == nil && ns != host {
			if exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", n.holder.Process.Pid)); strings.HasSuffix(exe, "/sleep") {
				return nil
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	return errors.New("namespace holder did not enter its namespaces within 2s")
}

// nsenter returns a command running argv inside the node's namespaces.
func (n *Node) nsenter(argv ...string) *exec.Cmd {
	args := []string{"-t", strconv.Itoa(n.holder.Process.Pid), "-n", "-m", "-u", "--wd=" + n.Dir, "--"}
	cmd := exec.Command("nsenter", append(args, argv...)...)
	cmd.SysProcAttr = procAttr()
	return cmd
}

// run runs a short command inside the namespaces.
func (n *Node) run(argv ...string) error {
	if out, err := n.nsenter(argv...).CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %v: %s", strings.Join(argv, " "), err, out)
	}
	return nil
}

// DialContext opens a connection from inside the node's network namespace:
// to pod IPs, ClusterIPs, the node IP.
func (n *Node) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	return n.dialer.DialContext(ctx, network, addr)
}

// HTTPClient returns a client whose connections start inside the node's
// network namespace.
func (n *Node) HTTPClient() *http.Client {
	return &http.Client{
		Transport: &http.Transport{DialContext: n.dialer.DialContext, DisableKeepAlives: true},
		Timeout:   10 * time.Second,
	}
}

// LogPath is the log file of a component (e.g. "kubelet").
func (n *Node) LogPath(component string) string {
	return filepath.Join(n.Dir, "logs", component+".log")
}

// ContainerLog is the current log of container in pod ns/name as the
// kubelet wrote it (/var/log/pods inside the node, CRI format: time,
// stream, tag, line). The kubelet removes it with the pod, so read it while
// the pod exists. (Reading it here avoids the API server → kubelet path,
// which `kubectl logs` takes and this node does not serve.)
func (n *Node) ContainerLog(ns, name, container string) ([]byte, error) {
	dirs, err := filepath.Glob(filepath.Join(n.Dir, "overlay_var_log", "upper", "pods", ns+"_"+name+"_*", container))
	if err != nil || len(dirs) == 0 {
		return nil, fmt.Errorf("no log of %s/%s %s on the node (%v)", ns, name, container, err)
	}
	files, _ := filepath.Glob(filepath.Join(dirs[0], "*.log"))
	var out []byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		out = append(out, b...)
	}
	return out, nil
}
