package realnode

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// kubeconfigs the components use, by user.
type creds struct {
	admin, kubelet, proxy             string // kubeconfig paths
	kubeletCert, kubeletKey           string // the kubelet's serving certificate
	apiToKubeletCert, apiToKubeletKey string
	apiCert, apiKey                   string
	saPub, saKey                      string
}

func (n *Node) makeCreds() (*creds, error) {
	var err error
	if n.pki, err = newPKI(filepath.Join(n.Dir, "pki")); err != nil {
		return nil, err
	}
	c := &creds{}
	server := "https://" + net.JoinHostPort(NodeIP, strconv.Itoa(apiPort))
	type user struct {
		name, cn string
		orgs     []string
		out      *string
	}
	for _, u := range []user{
		{"admin", "flint-realnode-admin", []string{"system:masters"}, &c.admin},
		{"kubelet", "system:node:" + NodeName, []string{"system:nodes"}, &c.kubelet},
		{"kube-proxy", "system:kube-proxy", nil, &c.proxy},
	} {
		cert, key, err := n.pki.issue(u.name, u.cn, u.orgs)
		if err != nil {
			return nil, err
		}
		*u.out = filepath.Join(n.Dir, u.name+".kubeconfig")
		if err := kubeconfig(*u.out, server, n.pki.CAFile, cert, key); err != nil {
			return nil, err
		}
	}
	if c.apiCert, c.apiKey, err = n.pki.issue("apiserver", "kube-apiserver", nil,
		"127.0.0.1", NodeIP, APIServiceIP, "localhost", "kubernetes", "kubernetes.default",
		"kubernetes.default.svc", "kubernetes.default.svc."+ClusterDomain); err != nil {
		return nil, err
	}
	if c.apiToKubeletCert, c.apiToKubeletKey, err = n.pki.issue("apiserver-kubelet-client", "kube-apiserver-kubelet-client", []string{"system:masters"}); err != nil {
		return nil, err
	}
	if c.kubeletCert, c.kubeletKey, err = n.pki.issue("kubelet-serving", "system:node:"+NodeName, []string{"system:nodes"}, NodeIP, NodeName); err != nil {
		return nil, err
	}
	if c.saPub, c.saKey, err = n.pki.serviceAccountKey(); err != nil {
		return nil, err
	}
	return c, nil
}

func (n *Node) bin(name string) string { return filepath.Join(n.cfg.BinDir, name) }

// startControlPlane starts etcd, kube-apiserver, kube-controller-manager and
// kube-scheduler, returning once the API server is ready.
func (n *Node) startControlPlane(ctx context.Context) error {
	c, err := n.makeCreds()
	if err != nil {
		return err
	}
	n.creds = c
	if _, err := n.startProc("etcd", n.bin("etcd"),
		"--name=node", "--data-dir="+filepath.Join(n.Dir, "etcd"),
		"--listen-client-urls=http://127.0.0.1:2379", "--advertise-client-urls=http://127.0.0.1:2379",
		"--listen-peer-urls=http://127.0.0.1:2380", "--initial-advertise-peer-urls=http://127.0.0.1:2380",
		"--initial-cluster=node=http://127.0.0.1:2380",
		"--unsafe-no-fsync", "--log-level=warn"); err != nil {
		return err
	}
	if _, err := n.startProc("kube-apiserver", n.bin("kube-apiserver"),
		"--etcd-servers=http://127.0.0.1:2379",
		"--advertise-address="+NodeIP, "--bind-address=0.0.0.0", "--secure-port="+strconv.Itoa(apiPort),
		"--service-cluster-ip-range="+ServiceCIDR,
		"--client-ca-file="+n.pki.CAFile, "--tls-cert-file="+c.apiCert, "--tls-private-key-file="+c.apiKey,
		"--service-account-issuer=https://kubernetes.default.svc."+ClusterDomain,
		"--service-account-key-file="+c.saPub, "--service-account-signing-key-file="+c.saKey,
		"--authorization-mode=Node,RBAC", "--allow-privileged=true",
		"--kubelet-client-certificate="+c.apiToKubeletCert, "--kubelet-client-key="+c.apiToKubeletKey,
		"--kubelet-preferred-address-types=InternalIP",
		"--enable-priority-and-fairness=false"); err != nil {
		return err
	}
	n.REST = &rest.Config{
		Host: "https://" + net.JoinHostPort(NodeIP, strconv.Itoa(apiPort)),
		TLSClientConfig: rest.TLSClientConfig{
			CAFile:   n.pki.CAFile,
			CertFile: filepath.Join(n.pki.dir, "admin.crt"),
			KeyFile:  filepath.Join(n.pki.dir, "admin.key"),
		},
		Dial: n.dialer.DialContext,
		QPS:  100, Burst: 200,
	}
	if n.Kube, err = kubernetes.NewForConfig(n.REST); err != nil {
		return err
	}
	if err := n.await(ctx, "kube-apiserver /readyz", time.Minute, func(ctx context.Context) (bool, error) {
		b, err := n.Kube.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		return err == nil && string(b) == "ok", nil
	}); err != nil {
		return err
	}
	if _, err := n.startProc("kube-controller-manager", n.bin("kube-controller-manager"),
		"--kubeconfig="+c.admin, "--leader-elect=false", "--secure-port=0",
		"--use-service-account-credentials=true",
		"--service-account-private-key-file="+c.saKey, "--root-ca-file="+n.pki.CAFile,
	); err != nil {
		return err
	}
	if _, err := n.startProc("kube-scheduler", n.bin("kube-scheduler"),
		"--kubeconfig="+c.admin, "--leader-elect=false", "--bind-address=127.0.0.1"); err != nil {
		return err
	}
	return nil
}

// await polls cond every 100ms until it holds, a component dies or the
// timeout passes.
func (n *Node) await(ctx context.Context, what string, timeout time.Duration, cond func(context.Context) (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		ok, err := cond(ctx)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if ok {
			return nil
		}
		for _, p := range n.procs {
			if done, err := p.exited(); done {
				return fmt.Errorf("%s: %s exited (%v); see %s", what, p.name, err, n.LogPath(p.name))
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: not within %s", what, timeout)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
