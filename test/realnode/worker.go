package realnode

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func (n *Node) containerdDir(parts ...string) string {
	return filepath.Join(append([]string{n.Dir, "containerd"}, parts...)...)
}

// ContainerdSocket is the node's containerd endpoint (usable from the host:
// the socket file lives in the node's directory).
func (n *Node) ContainerdSocket() string { return n.containerdDir("containerd.sock") }

// containerdConfig: see real-node.md for why each non-default is there.
const containerdConfig = `version = 2
root = %[1]q
state = %[2]q
[grpc]
  address = %[3]q
[ttrpc]
  address = %[4]q
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = %[5]q
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %[6]q
  # This VM lacks CAP_SYS_RESOURCE: without it every sandbox fails in runc.
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  disable_apparmor = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "/run/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = %[7]q
`

const cniConfig = `{
  "cniVersion": "0.4.0",
  "name": "flint-realnode",
  "plugins": [
    {"type": "bridge", "bridge": "cni0", "isGateway": true, "isDefaultGateway": true, "ipMasq": true, "hairpinMode": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": %q}]], "dataDir": %q}},
    {"type": "portmap", "capabilities": {"portMappings": true}},
    {"type": "loopback"}
  ]
}
`

func (n *Node) startContainerd(ctx context.Context) error {
	netd := filepath.Join(n.Dir, "cni", "net.d")
	if err := os.MkdirAll(netd, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(netd, "10-flint.conflist"),
		fmt.Appendf(nil, cniConfig, PodCIDR, filepath.Join(n.Dir, "cni", "ipam")), 0o644); err != nil {
		return err
	}
	conf := n.containerdDir("config.toml")
	if err := os.MkdirAll(n.containerdDir(), 0o755); err != nil {
		return err
	}
	body := fmt.Sprintf(containerdConfig, n.containerdDir("root"), n.containerdDir("state"),
		n.ContainerdSocket(), n.containerdDir("ttrpc.sock"), n.containerdDir("opt"), n.ImageRef("pause"), netd)
	if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
		return err
	}
	if _, err := n.startProc("containerd", "containerd", "--config", conf); err != nil {
		return err
	}
	return n.await(ctx, "containerd socket", 30*time.Second, func(context.Context) (bool, error) {
		return exec.CommandContext(ctx, "ctr", "--address", n.ContainerdSocket(), "version").Run() == nil, nil
	})
}

// Import loads a docker-archive image into containerd's k8s.io namespace,
// where the kubelet finds it (pods use imagePullPolicy Never/IfNotPresent).
func (n *Node) Import(ctx context.Context, img Image) error {
	out, err := exec.CommandContext(ctx, "ctr", "--address", n.ContainerdSocket(), "-n", "k8s.io",
		"images", "import", "--no-unpack=false", img.Tarball).CombinedOutput()
	if err != nil {
		return fmt.Errorf("import %s: %v: %s", img.Ref, err, out)
	}
	return nil
}

const kubeletConfig = `apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: cgroupfs
cgroupRoot: %[1]q
failCgroupV1: false
failSwapOn: false
containerRuntimeEndpoint: unix://%[2]s
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: %[3]q}
authorization: {mode: AlwaysAllow}
tlsCertFile: %[4]q
tlsPrivateKeyFile: %[5]q
resolvConf: %[6]q
address: ` + NodeIP + `
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
clusterDNS: [` + DNSServiceIP + `]
clusterDomain: ` + ClusterDomain + `
# Images cannot be pulled again: never collect them, never evict for disk.
evictionHard: {memory.available: 100Mi, nodefs.available: 1%%, imagefs.available: 1%%, nodefs.inodesFree: 1%%}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
podLogsDir: /var/log/pods
# A mounted Secret's files are rewritten at the pod's next sync: every 10 s
# here instead of every minute, so a rotation test waits seconds, not a
# minute (TestAPIKeyAddedToTheSecretIsAcceptedWithoutRestart).
syncFrequency: 10s
`

// startNode starts the kubelet and kube-proxy.
func (n *Node) startNode(ctx context.Context) error {
	resolv := filepath.Join(n.Dir, "etc", "kubelet-resolv.conf")
	if err := os.WriteFile(resolv, []byte("nameserver 127.0.0.1\n"), 0o644); err != nil {
		return err
	}
	kc := filepath.Join(n.Dir, "kubelet.yaml")
	body := fmt.Sprintf(kubeletConfig, n.CgroupRoot, n.ContainerdSocket(), n.pki.CAFile,
		n.creds.kubeletCert, n.creds.kubeletKey, resolv)
	if err := os.WriteFile(kc, []byte(body), 0o644); err != nil {
		return err
	}
	if _, err := n.startProc("kubelet", n.bin("kubelet"),
		"--config="+kc, "--kubeconfig="+n.creds.kubelet,
		"--hostname-override="+NodeName, "--node-ip="+NodeIP,
		"--root-dir="+filepath.Join(n.Dir, "kubelet")); err != nil {
		return err
	}
	pc := filepath.Join(n.Dir, "kube-proxy.yaml")
	proxyConf := fmt.Sprintf(`apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: %q}
mode: iptables
clusterCIDR: %s
hostnameOverride: %s
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
# Zeros leave the host's nf_conntrack_max and timeouts alone.
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
`, n.creds.proxy, PodCIDR, NodeName)
	if err := os.WriteFile(pc, []byte(proxyConf), 0o644); err != nil {
		return err
	}
	_, err := n.startProc("kube-proxy", n.bin("kube-proxy"), "--config="+pc)
	return err
}

func (n *Node) waitNodeReady(ctx context.Context) error {
	return n.await(ctx, "Node Ready", 2*time.Minute, func(ctx context.Context) (bool, error) {
		node, err := n.Kube.CoreV1().Nodes().Get(ctx, NodeName, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		for _, c := range node.Status.Conditions {
			if c.Type == corev1.NodeReady {
				return c.Status == corev1.ConditionTrue, nil
			}
		}
		return false, nil
	})
}

// tail returns the last lines of a component's log, for error messages.
func (n *Node) tail(component string, lines int) string {
	b, _ := os.ReadFile(n.LogPath(component))
	l := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(l) > lines {
		l = l[len(l)-lines:]
	}
	return strings.Join(l, "\n")
}
