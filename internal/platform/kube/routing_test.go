package kube

import (
	"log/slog"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flint-dev/flint/api/v1alpha1"
	"github.com/flint-dev/flint/internal/platform"
)

// offline is a Platform fed by calling its event handlers directly.
func offline(cfg Config) *Platform {
	return &Platform{
		cfg:      cfg,
		agents:   map[platform.AgentKey]*v1alpha1.Agent{},
		slices:   map[platform.AgentKey]map[string]sliceEndpoints{},
		services: map[platform.AgentKey]serviceRoute{},
		probes:   newPendingProbes(cfg.PendingProbeInterval),
		log:      slog.New(slog.DiscardHandler),
	}
}

func agentService(ns, name, clusterIP string, appProtocol *string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue}},
		Spec: corev1.ServiceSpec{ClusterIP: clusterIP, Ports: []corev1.ServicePort{
			{Name: v1alpha1.ServingPortName, Port: 80, AppProtocol: appProtocol},
			{Name: v1alpha1.AdminPortName, Port: v1alpha1.AdminPort},
		}},
	}
}

func TestTLSServerNameIsTheServiceDNSName(t *testing.T) {
	p := offline(DefaultConfig())
	s := agentSlice("ns", "s", "echo", discoveryv1.AddressTypeIPv4, endpoint("a", "10.1.0.1", ptr(true), nil))
	p.upsertSlice(s)
	eps, _ := p.ReadyEndpoints(platform.AgentKey{Namespace: "ns", Name: "echo"})
	if len(eps) != 1 || eps[0].TLSServerName != "" {
		t.Fatalf("plain HTTP sidecars: %+v, want one endpoint without a TLS server name", eps)
	}
	s = s.DeepCopy()
	s.Ports[0].AppProtocol = ptr(v1alpha1.ServingAppProtocolTLS)
	p.upsertSlice(s)
	eps, _ = p.ReadyEndpoints(platform.AgentKey{Namespace: "ns", Name: "echo"})
	if len(eps) != 1 || eps[0].Addr != "10.1.0.1:8012" || eps[0].TLSServerName != "echo.ns.svc.cluster.local" {
		t.Fatalf("TLS sidecars: %+v, want the pod IP dialled and echo.ns.svc.cluster.local verified", eps)
	}
}

func TestServiceRoutingSendsToTheClusterIPOnceAPodIsReady(t *testing.T) {
	cfg := DefaultConfig()
	cfg.DirectToPod, cfg.ClusterDomain = false, "example.internal"
	p := offline(cfg)
	key := platform.AgentKey{Namespace: "ns", Name: "echo"}
	p.upsertAgent(&v1alpha1.Agent{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "echo"}})
	p.upsertService(agentService("ns", "echo", "10.96.0.7", ptr(v1alpha1.ServingAppProtocolTLS)))

	eps, changed := p.ReadyEndpoints(key)
	if len(eps) != 0 {
		t.Fatalf("no pod is ready, yet endpoints %v: requests must be held, not sent to the Service", names(eps))
	}
	p.upsertSlice(agentSlice("ns", "s", "echo", discoveryv1.AddressTypeIPv4,
		endpoint("a", "10.1.0.1", ptr(true), nil), endpoint("b", "10.1.0.2", ptr(true), nil), endpoint("c", "10.1.0.3", ptr(false), ptr(true))))
	select {
	case <-changed:
	default:
		t.Fatal("waiters not woken when the first pod turned ready")
	}
	eps, _ = p.ReadyEndpoints(key)
	want := []platform.Endpoint{{Addr: "10.96.0.7:80", AdminAddr: "10.96.0.7:8022", Replica: "service/echo", TLSServerName: "echo.ns.svc.example.internal"}}
	if !slices.Equal(eps, want) {
		t.Fatalf("endpoints %+v, want %+v", eps, want)
	}
	if draining, _ := p.DrainingEndpoints(key); len(draining) != 0 {
		t.Errorf("draining %v: through a Service, kube-proxy handles terminating pods", names(draining))
	}

	// An MCP agent stays direct: a Service cannot pin sessions to pods.
	p.upsertAgent(&v1alpha1.Agent{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "echo"}, Spec: v1alpha1.AgentSpec{Protocol: v1alpha1.ProtocolMCP}})
	if eps, _ = p.ReadyEndpoints(key); !slices.Equal(names(eps), []string{"a@10.1.0.1:8012/10.1.0.1:8022", "b@10.1.0.2:8012/10.1.0.2:8022"}) {
		t.Errorf("MCP agent endpoints %v, want its pods", names(eps))
	}
	p.upsertAgent(&v1alpha1.Agent{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "echo"}})

	// Without its Service (deleted, or headless) the agent is routed direct.
	p.deleteService(agentService("ns", "echo", "10.96.0.7", nil))
	if eps, _ = p.ReadyEndpoints(key); len(eps) != 2 {
		t.Errorf("endpoints without a Service: %v, want the two ready pods", names(eps))
	}
	p.upsertService(agentService("ns", "echo", corev1.ClusterIPNone, nil))
	if eps, _ = p.ReadyEndpoints(key); len(eps) != 2 {
		t.Errorf("endpoints with a headless Service: %v, want the two ready pods", names(eps))
	}
}
