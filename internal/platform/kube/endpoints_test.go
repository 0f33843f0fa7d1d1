package kube

import (
	"context"
	"fmt"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flint-dev/flint/api/v1alpha1"
	"github.com/flint-dev/flint/internal/platform"
	"github.com/flint-dev/flint/internal/testenv"
)

// endpoint is an EndpointSlice entry for a pod.
func endpoint(pod, addr string, ready, terminating *bool) discoveryv1.Endpoint {
	return discoveryv1.Endpoint{
		Addresses:  []string{addr},
		Conditions: discoveryv1.EndpointConditions{Ready: ready, Terminating: terminating},
		TargetRef:  &corev1.ObjectReference{Kind: "Pod", Name: pod},
	}
}

// agentSlice is an EndpointSlice as the EndpointSlice controller writes it
// for an agent's Service (labels inherited from the Service).
func agentSlice(ns, name, agent string, family discoveryv1.AddressType, eps ...discoveryv1.Endpoint) *discoveryv1.EndpointSlice {
	return &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{
			discoveryv1.LabelServiceName: agent, v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue, v1alpha1.LabelAgent: agent}},
		AddressType: family,
		Endpoints:   eps,
		Ports: []discoveryv1.EndpointPort{
			{Name: ptr(v1alpha1.ServingPortName), Port: ptr[int32](v1alpha1.ServingPort)},
			{Name: ptr(v1alpha1.AdminPortName), Port: ptr[int32](v1alpha1.AdminPort)},
		},
	}
}

func names(eps []platform.Endpoint) []string {
	out := make([]string, len(eps))
	for i, ep := range eps {
		out[i] = fmt.Sprintf("%s@%s/%s", ep.Replica, ep.Addr, ep.AdminAddr)
	}
	return out
}

func TestEndpointsOfASlice(t *testing.T) {
	yes, no := ptr(true), ptr(false)
	s := agentSlice("ns", "s", "echo", discoveryv1.AddressTypeIPv6,
		endpoint("a", "fd00::1", yes, no),
		endpoint("b", "fd00::2", nil, nil), // unknown readiness counts as ready
		endpoint("c", "fd00::3", no, nil),  // starting
		endpoint("d", "fd00::4", no, yes),  // terminating
	)
	got := endpointsOf(s, "echo.ns.svc.cluster.local")
	if want := []string{"a@[fd00::1]:8012/[fd00::1]:8022", "b@[fd00::2]:8012/[fd00::2]:8022"}; !slices.Equal(names(got.ready), want) {
		t.Errorf("ready %v, want %v", names(got.ready), want)
	}
	if want := []string{"d@[fd00::4]:8012/[fd00::4]:8022"}; !slices.Equal(names(got.draining), want) {
		t.Errorf("draining %v, want %v", names(got.draining), want)
	}

	s.Ports = s.Ports[:1] // no admin port published yet
	if got := endpointsOf(s, ""); len(got.ready)+len(got.draining) != 0 {
		t.Errorf("endpoints without an admin port: %v", got)
	}
	s = agentSlice("ns", "s", "echo", discoveryv1.AddressTypeFQDN, endpoint("a", "a.example.com", yes, nil))
	if got := endpointsOf(s, ""); len(got.ready) != 0 {
		t.Errorf("FQDN endpoints are not pods: %v", got)
	}
}

// TestReadyEndpointsFollowEndpointSlices writes EndpointSlices by hand (as
// the EndpointSlice controller would) and checks the platform's view and
// that waiters are woken on each change.
func TestReadyEndpointsFollowEndpointSlices(t *testing.T) {
	t.Parallel()
	env, p := cluster(t)
	ns := env.Namespace(t)
	ctx := context.Background()
	key := platform.AgentKey{Namespace: ns, Name: "echo"}
	yes, no := ptr(true), ptr(false)

	eps, changed := p.ReadyEndpoints(key)
	if len(eps) != 0 {
		t.Fatalf("endpoints before any slice: %v", eps)
	}
	v4 := agentSlice(ns, "echo-v4", "echo", discoveryv1.AddressTypeIPv4,
		endpoint("pod-a", "10.0.0.1", yes, nil), endpoint("pod-b", "10.0.0.2", no, nil), endpoint("pod-c", "10.0.0.3", no, yes))
	create(t, env, v4)
	waitClosed(t, changed, "first slice")
	eps, changed = p.ReadyEndpoints(key)
	if want := []string{"pod-a@10.0.0.1:8012/10.0.0.1:8022"}; !slices.Equal(names(eps), want) {
		t.Fatalf("ready %v, want %v", names(eps), want)
	}
	if draining, _ := p.DrainingEndpoints(key); !slices.Equal(names(draining), []string{"pod-c@10.0.0.3:8012/10.0.0.3:8022"}) {
		t.Errorf("draining %v", names(draining))
	}

	// pod-b turns ready.
	v4.Endpoints[1].Conditions.Ready = yes
	if err := env.Client.Update(ctx, v4); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, changed, "pod-b ready")
	eps, changed = p.ReadyEndpoints(key)
	if want := []string{"pod-a@10.0.0.1:8012/10.0.0.1:8022", "pod-b@10.0.0.2:8012/10.0.0.2:8022"}; !slices.Equal(names(eps), want) {
		t.Fatalf("ready %v, want %v", names(eps), want)
	}

	// Dual stack: the same pods in an IPv6 slice, plus one only there.
	// Each pod counts once, on its IPv4 address.
	create(t, env, agentSlice(ns, "echo-v6", "echo", discoveryv1.AddressTypeIPv6,
		endpoint("pod-a", "fd00::1", yes, nil), endpoint("pod-d", "fd00::4", yes, nil)))
	waitClosed(t, changed, "IPv6 slice")
	eps, changed = p.ReadyEndpoints(key)
	if want := []string{"pod-a@10.0.0.1:8012/10.0.0.1:8022", "pod-b@10.0.0.2:8012/10.0.0.2:8022",
		"pod-d@[fd00::4]:8012/[fd00::4]:8022"}; !slices.Equal(names(eps), want) {
		t.Fatalf("ready %v, want %v", names(eps), want)
	}

	// A slice of a Service Flint does not manage is ignored.
	foreign := agentSlice(ns, "other", "echo", discoveryv1.AddressTypeIPv4, endpoint("pod-x", "10.0.0.9", yes, nil))
	delete(foreign.Labels, v1alpha1.LabelManagedBy)
	create(t, env, foreign)

	// A one-shot reader (`flint describe -kube`) sees the replicas the
	// platform routes to, by the same rule: not pod-c (terminating), not
	// pod-x (foreign slice), pod-a once on IPv4.
	once, err := ReadyEndpointsOnce(ctx, env.Client, key)
	if err != nil || !slices.Equal(names(once), names(eps)) {
		t.Fatalf("ReadyEndpointsOnce %v (%v), want %v", names(once), err, names(eps))
	}

	for _, s := range []*discoveryv1.EndpointSlice{v4, {ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "echo-v6"}}} {
		if err := env.Client.Delete(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Eventually(t, settle, func() error {
		if eps, _ := p.ReadyEndpoints(key); len(eps) != 0 {
			return fmt.Errorf("endpoints after the slices are gone: %v", names(eps))
		}
		return nil
	})
	waitClosed(t, changed, "slices deleted")
}

func create(t *testing.T, env *testenv.Env, s *discoveryv1.EndpointSlice) {
	t.Helper()
	if err := env.Client.Create(context.Background(), s); err != nil {
		t.Fatalf("create slice %s: %v", s.Name, err)
	}
}
