package realnode

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// CoreDNS runs as a process in the node's namespace rather than as a pod:
// the node is Ready for tests without first scheduling, sandboxing and
// probing a DNS pod (and without a CoreDNS image), and its log sits next to
// the other components'. Pods still see a cluster's usual shape: the
// kubelet's clusterDNS is the kube-dns Service's fixed ClusterIP, which
// kube-proxy DNATs to CoreDNS on the node IP through a selectorless
// Service's EndpointSlice, so DNS from pods also exercises kube-proxy.
const corefile = `.:53 {
    errors
    health 127.0.0.1:18080
    ready 127.0.0.1:18181
    kubernetes ` + ClusterDomain + ` in-addr.arpa ip6.arpa {
        kubeconfig %s node
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }
    cache 5
}
`

func (n *Node) startDNS(ctx context.Context) error {
	cf := filepath.Join(n.Dir, "Corefile")
	if err := os.WriteFile(cf, fmt.Appendf(nil, corefile, n.creds.admin), 0o644); err != nil {
		return err
	}
	if _, err := n.startProc("coredns", n.bin("coredns"), "-conf", cf); err != nil {
		return err
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "kube-dns", Namespace: "kube-system",
			Labels: map[string]string{"k8s-app": "kube-dns", "kubernetes.io/name": "CoreDNS"}},
		Spec: corev1.ServiceSpec{
			ClusterIP: DNSServiceIP,
			Ports: []corev1.ServicePort{
				{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP},
				{Name: "dns-tcp", Port: 53, Protocol: corev1.ProtocolTCP},
			},
		},
	}
	if _, err := n.Kube.CoreV1().Services("kube-system").Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create kube-dns Service: %w", err)
	}
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: "kube-dns-node", Namespace: "kube-system", Labels: map[string]string{
			discoveryv1.LabelServiceName: "kube-dns",
			discoveryv1.LabelManagedBy:   "flint-realnode",
		}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{{
			Addresses:  []string{NodeIP},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)},
			NodeName:   ptr.To(NodeName),
		}},
		Ports: []discoveryv1.EndpointPort{
			{Name: ptr.To("dns"), Port: ptr.To[int32](53), Protocol: ptr.To(corev1.ProtocolUDP)},
			{Name: ptr.To("dns-tcp"), Port: ptr.To[int32](53), Protocol: ptr.To(corev1.ProtocolTCP)},
		},
	}
	if _, err := n.Kube.DiscoveryV1().EndpointSlices("kube-system").Create(ctx, slice, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create kube-dns EndpointSlice: %w", err)
	}
	r := n.Resolver()
	return n.await(ctx, "CoreDNS through the kube-dns ClusterIP", time.Minute, func(ctx context.Context) (bool, error) {
		c, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		addrs, err := r.LookupHost(c, "kubernetes.default.svc."+ClusterDomain)
		return err == nil && len(addrs) == 1 && addrs[0] == APIServiceIP, nil
	})
}

// Resolver resolves names as a pod does: through the kube-dns ClusterIP.
func (n *Node) Resolver() *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return n.dialer.DialContext(ctx, network, net.JoinHostPort(DNSServiceIP, "53"))
	}}
}
