package realnode_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/flint-dev/flint/internal/testenv"
	"github.com/flint-dev/flint/test/realnode"
)

// A Deployment of an image built here runs on the real kubelet, and its
// pods answer on their pod IPs (CNI bridge) and through the Service's
// ClusterIP (kube-proxy's iptables DNAT).
func TestDeploymentServesByPodIPAndClusterIP(t *testing.T) {
	needNode(t)
	ns := newNamespace(t)
	svc, pods := deployTestServer(t, ns, "web", 2)
	for _, p := range pods {
		t.Logf("pod %s: IP %s, created → Ready in %s", p.Name, p.Status.PodIP, readyAfter(p))
		if !strings.HasPrefix(p.Status.PodIP, "10.244.0.") {
			t.Errorf("pod %s has IP %q, want one from the CNI bridge's %s", p.Name, p.Status.PodIP, realnode.PodCIDR)
		}
		body, err := get(podAddr(p), "/")
		if err != nil {
			t.Fatalf("pod %s by IP: %v", p.Name, err)
		}
		if body != "ok "+p.Name {
			t.Errorf("pod %s by IP answered %q, want %q", p.Name, body, "ok "+p.Name)
		}
	}
	// kube-proxy programs the Service's rules asynchronously after the
	// EndpointSlice changes; both replicas must be reached eventually.
	seen := map[string]bool{}
	testenv.Await(t, 30*time.Second, "both replicas reached through ClusterIP "+svc.Spec.ClusterIP, func() (bool, string) {
		body, err := get(net.JoinHostPort(svc.Spec.ClusterIP, "80"), "/")
		if err != nil {
			return false, err.Error()
		}
		seen[strings.TrimPrefix(body, "ok ")] = true
		return len(seen) == 2, body
	})
}

// The Service's DNS name resolves to its ClusterIP from inside a pod (its
// resolv.conf from the kubelet's clusterDNS and search path) and from the
// node's namespace, through CoreDNS behind the kube-dns ClusterIP.
func TestServiceNameResolvesFromPod(t *testing.T) {
	needNode(t)
	ns := newNamespace(t)
	svc, pods := deployTestServer(t, ns, "named", 1)
	for _, name := range []string{"named", "named." + ns, "named." + ns + ".svc." + realnode.ClusterDomain} {
		testenv.Await(t, 30*time.Second, "pod resolves "+name, func() (bool, string) {
			body, err := get(podAddr(pods[0]), "/resolve?name="+name)
			if err != nil {
				return false, err.Error()
			}
			return body == svc.Spec.ClusterIP, body
		})
	}
	addrs, err := node.Resolver().LookupHost(context.Background(), "named."+ns+".svc."+realnode.ClusterDomain)
	if err != nil || len(addrs) != 1 || addrs[0] != svc.Spec.ClusterIP {
		t.Errorf("node namespace resolved %v (%v), want [%s]", addrs, err, svc.Spec.ClusterIP)
	}
	if _, err := get(podAddr(pods[0]), "/resolve?name=example.com"); err == nil {
		t.Error("a name outside the cluster resolved: the node must have no way out")
	}
}

// Deleting a pod delivers SIGTERM to its container at once; a container
// that finishes draining inside its grace period ends then, one that does
// not is killed when the grace period runs out.
func TestPodDeletionSendsSIGTERMAndHonoursGrace(t *testing.T) {
	needNode(t)
	ns := newNamespace(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name     string
		drain    string
		grace    int64
		min, max time.Duration
	}{
		// Drains 2s of its 20s: gone after the drain, long before the grace.
		{"drains", "2s", 20, 2 * time.Second, 12 * time.Second},
		// Would drain 60s but has 3s: killed at the grace period.
		{"killed", "60s", 3, 3 * time.Second, 15 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tmpl := testServerPod(map[string]string{"app": tc.name}, corev1.EnvVar{Name: "DRAIN", Value: tc.drain})
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: tc.name, Namespace: ns, Labels: tmpl.Labels}, Spec: tmpl.Spec}
			pod.Spec.TerminationGracePeriodSeconds = ptr.To(tc.grace)
			if _, err := node.Kube.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			var running corev1.Pod
			testenv.Await(t, time.Minute, "pod "+tc.name+" Ready", func() (bool, string) {
				p, err := node.Kube.CoreV1().Pods(ns).Get(ctx, tc.name, metav1.GetOptions{})
				if err != nil {
					return false, err.Error()
				}
				running = *p
				return readyAfter(*p) >= 0, string(p.Status.Phase)
			})
			t.Logf("created → Ready in %s", readyAfter(running))
			start := time.Now()
			if err := node.Kube.CoreV1().Pods(ns).Delete(ctx, tc.name, metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
			testenv.Await(t, 10*time.Second, "SIGTERM seen by the container", func() (bool, string) {
				body, err := get(podAddr(running), "/state")
				if err != nil {
					return false, err.Error()
				}
				return body == "terminating", body
			})
			testenv.Await(t, tc.max+10*time.Second, "pod "+tc.name+" gone", func() (bool, string) {
				_, err := node.Kube.CoreV1().Pods(ns).Get(ctx, tc.name, metav1.GetOptions{})
				return apierrors.IsNotFound(err), "still there"
			})
			took := time.Since(start)
			t.Logf("drain %s, grace %ds: deleted in %s", tc.drain, tc.grace, took.Round(time.Millisecond))
			if took < tc.min || took > tc.max {
				t.Errorf("pod deletion took %s, want between %s and %s", took, tc.min, tc.max)
			}
		})
	}
}

// The node's namespace has no route out: connecting to an address outside
// fails at once, from the node and from a pod (whose default route ends in
// the node's namespace).
func TestNothingLeavesTheNamespace(t *testing.T) {
	needNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := node.DialContext(ctx, "tcp", "192.0.2.1:80")
	if !errors.Is(err, syscall.ENETUNREACH) {
		t.Errorf("dialing outside from the node's namespace: %v, want network unreachable", err)
	}
	ns := newNamespace(t)
	_, pods := deployTestServer(t, ns, "prisoner", 1)
	resp, err := node.HTTPClient().Get("http://" + podAddr(pods[0]) + "/dial?addr=192.0.2.1:80")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(string(body), "unreachable") {
		t.Errorf("dialing outside from a pod: %s %s, want 502 and unreachable", resp.Status, body)
	}
	// The pod does reach the API server through the kubernetes Service.
	if _, err := get(podAddr(pods[0]), "/dial?addr="+realnode.APIServiceIP+":443"); err != nil {
		t.Errorf("pod to the kubernetes Service: %v", err)
	}
}
