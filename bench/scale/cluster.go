package main

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/flint-dev/flint/api/v1alpha1"
	"github.com/flint-dev/flint/internal/testenv"
)

// auditPolicy logs every write (metadata only) once it completes, so the
// benchmark counts what each client wrote at the API server itself.
const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived", "ResponseStarted"]
rules:
- level: Metadata
  verbs: ["create", "update", "patch", "delete", "deletecollection"]
- level: None
`

// startControlPlane runs etcd and kube-apiserver with an audit log of
// writes in dir. No kube-controller-manager: the benchmark writes the
// EndpointSlices itself, and nothing else may rewrite them.
func startControlPlane(dir string) (*testenv.Env, string, error) {
	policy := filepath.Join(dir, "audit-policy.yaml")
	auditLog := filepath.Join(dir, "audit.log")
	if err := os.WriteFile(policy, []byte(auditPolicy), 0o600); err != nil {
		return nil, "", err
	}
	// A /16 of ClusterIPs: envtest's default /24 runs out at 254 agents.
	env, err := testenv.New(testenv.Options{ServiceCIDR: "10.96.0.0/16", APIServerFlags: map[string]string{
		"audit-policy-file": policy, "audit-log-path": auditLog, "audit-log-format": "json",
		"audit-log-mode": "batch", "audit-log-batch-max-wait": "1s",
	}})
	return env, auditLog, err
}

// userKubeconfig provisions an admin user called name and writes its
// kubeconfig into dir: each Flint process is its own user in the audit log.
func userKubeconfig(env *testenv.Env, dir, name string) (string, error) {
	u, err := env.Environment.AddUser(envtest.User{Name: name, Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return "", fmt.Errorf("user %s: %w", name, err)
	}
	kc, err := u.KubeConfig()
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, name+".kubeconfig")
	return path, os.WriteFile(path, kc, 0o600)
}

// agentKey names one benchmark agent.
type agentKey struct{ ns, name string }

func agentKeys(agents, namespaces int) []agentKey {
	keys := make([]agentKey, agents)
	for i := range keys {
		keys[i] = agentKey{ns: fmt.Sprintf("scale-%02d", i%namespaces), name: fmt.Sprintf("agent-%04d", i)}
	}
	return keys
}

// endpointAddr is the i-th address handed out to a slice endpoint, in the
// pod network (podnet) above the fake sidecars': nothing listens on their
// serving port, so connections are refused at once; these agents are never
// invoked, routing to them is observed through the gateways' describe
// endpoint (the same endpoint set the router reads). Their slices name
// idleAdminPort as the admin port, where one listener answers for every
// address as an idle sidecar would (see idleSidecars).
func endpointAddr(i int) string {
	base := netip.MustParseAddr("10.244.16.0").As4()
	n := uint32(base[0])<<24 | uint32(base[1])<<16 | uint32(base[2])<<8 + uint32(i+1)
	return netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}).String()
}

func agentObject(k agentKey) *v1alpha1.Agent {
	return &v1alpha1.Agent{
		ObjectMeta: metav1.ObjectMeta{Namespace: k.ns, Name: k.name},
		Spec: v1alpha1.AgentSpec{
			Protocol:    v1alpha1.ProtocolHTTP,
			Container:   v1alpha1.AgentContainer{Image: "echo:scale", Port: 8080},
			Concurrency: 10,
		},
	}
}

// sliceObject is the agent's EndpointSlice as the EndpointSlice controller
// would write it for the Service the manager creates, with admin as the
// sidecars' admin port.
func sliceObject(k agentKey, addrs []string, admin int32) *discoveryv1.EndpointSlice {
	s := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: k.ns, Name: k.name + "-scale", Labels: map[string]string{
			discoveryv1.LabelServiceName: k.name, v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue,
		}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports: []discoveryv1.EndpointPort{
			{Name: ptr.To(v1alpha1.ServingPortName), Port: ptr.To(int32(v1alpha1.ServingPort)), Protocol: ptr.To(corev1.ProtocolTCP)},
			{Name: ptr.To(v1alpha1.AdminPortName), Port: ptr.To(admin), Protocol: ptr.To(corev1.ProtocolTCP)},
		},
	}
	for _, a := range addrs {
		s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{Addresses: []string{a},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)},
			TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: k.ns, Name: k.name + "-" + a}})
	}
	return s
}

// populate creates the namespaces, Agents and EndpointSlices with workers
// concurrent writers, and returns each agent's endpoint addresses.
// The first active agents' endpoints are the fake sidecars'.
func populate(ctx context.Context, c client.Client, kube kubernetes.Interface, keys []agentKey, perAgent, workers int,
	sidecars []string, active int) (map[agentKey][]string, error) {
	nss := map[string]bool{}
	for _, k := range keys {
		if !nss[k.ns] {
			nss[k.ns] = true
			if _, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: k.ns}}, metav1.CreateOptions{}); err != nil {
				return nil, fmt.Errorf("namespace %s: %w", k.ns, err)
			}
		}
	}
	addrs := make(map[agentKey][]string, len(keys))
	next := 0
	for i, k := range keys {
		if i < active {
			addrs[k] = slices.Clone(sidecars)
			continue
		}
		for range perAgent {
			addrs[k] = append(addrs[k], endpointAddr(next))
			next++
		}
	}
	return addrs, parallel(ctx, len(keys), workers, func(i int) error {
		k := keys[i]
		if err := c.Create(ctx, agentObject(k)); err != nil {
			return fmt.Errorf("agent %s/%s: %w", k.ns, k.name, err)
		}
		if _, err := kube.DiscoveryV1().EndpointSlices(k.ns).Create(ctx, sliceObject(k, addrs[k], adminPortOf(i, active)), metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("slice %s/%s: %w", k.ns, k.name, err)
		}
		return nil
	})
}

// adminPortOf is the admin port of the i-th agent's replicas: the fake
// sidecars' for the active agents, the idle listener's for the others.
func adminPortOf(i, active int) int32 {
	if i < active {
		return adminPort
	}
	return idleAdminPort
}

// parallel runs f(0..n-1) on workers goroutines, stopping at the first error.
func parallel(ctx context.Context, n, workers int, f func(int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	idx := make(chan int)
	for range workers {
		wg.Go(func() {
			for i := range idx {
				if err := f(i); err != nil {
					cancel(err)
				}
			}
		})
	}
feed:
	for i := range n {
		select {
		case idx <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(idx)
	wg.Wait()
	return context.Cause(ctx)
}

// countDeployments counts the Deployments the manager made (metadata only).
func countDeployments(ctx context.Context, c client.Client) (int, error) {
	var list metav1.PartialObjectMetadataList
	list.SetGroupVersionKind(schemaDeploymentList)
	if err := c.List(ctx, &list, client.MatchingLabels{v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue}); err != nil {
		return 0, err
	}
	return len(list.Items), nil
}

// waitDeployments polls until want Deployments exist and returns when.
func waitDeployments(ctx context.Context, c client.Client, want int, timeout time.Duration) (time.Time, error) {
	deadline := time.Now().Add(timeout)
	for {
		n, err := countDeployments(ctx, c)
		if err == nil && n >= want {
			return time.Now(), nil
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("%d of %d Deployments after %s (last error: %v)", n, want, timeout, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
