package kube

import (
	"net"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	toolscache "k8s.io/client-go/tools/cache"

	"github.com/flint-dev/flint/api/v1alpha1"
	"github.com/flint-dev/flint/internal/platform"
)

// serviceRoute is how an agent's Service is reached through kube-proxy.
type serviceRoute struct {
	clusterIP      string
	serving, admin int32
	tls            bool
}

// serviceDNSName is the name an agent's sidecar certificates carry: the
// Service's DNS name. The gateway dials pod IPs but verifies this name.
func (p *Platform) serviceDNSName(key platform.AgentKey) string {
	return key.Name + "." + key.Namespace + ".svc." + p.cfg.ClusterDomain
}

// serviceRouteLocked returns the single endpoint that stands for the
// agent's Service when routing goes through ClusterIPs (DirectToPod off):
// kube-proxy picks the pod. Readiness still comes from the EndpointSlices,
// so the gateway holds requests while no pod is ready exactly as with
// direct routing. MCP agents stay direct: a Service cannot pin a session to
// the pod that holds it. Headless Services (no ClusterIP) stay direct too.
func (p *Platform) serviceRouteLocked(key platform.AgentKey, ready []platform.Endpoint) ([]platform.Endpoint, bool) {
	if len(ready) == 0 || !p.routesToServiceLocked(key) {
		return nil, false
	}
	r := p.services[key]
	ep := platform.Endpoint{
		Addr:      net.JoinHostPort(r.clusterIP, strconv.Itoa(int(r.serving))),
		AdminAddr: net.JoinHostPort(r.clusterIP, strconv.Itoa(int(r.admin))),
		Replica:   "service/" + key.Name,
	}
	if r.tls {
		ep.TLSServerName = p.serviceDNSName(key)
	}
	return []platform.Endpoint{ep}, true
}

// routesToServiceLocked reports whether the agent's requests go to its
// Service's ClusterIP once a pod is ready, rather than to pod IPs.
func (p *Platform) routesToServiceLocked(key platform.AgentKey) bool {
	if p.cfg.DirectToPod {
		return false
	}
	if a, ok := p.agents[key]; ok && a.Spec.Protocol == v1alpha1.ProtocolMCP {
		return false
	}
	r, ok := p.services[key]
	return ok && r.clusterIP != "" && r.clusterIP != corev1.ClusterIPNone && r.serving != 0 && r.admin != 0
}

// serviceAgent returns the agent a Service belongs to (it has the agent's
// name) when Flint manages it.
func serviceAgent(s *corev1.Service) (platform.AgentKey, bool) {
	if s.Labels[v1alpha1.LabelManagedBy] != v1alpha1.ManagedByValue {
		return platform.AgentKey{}, false
	}
	return platform.AgentKey{Namespace: s.Namespace, Name: s.Name}, true
}

func (p *Platform) upsertService(obj any) {
	s, ok := obj.(*corev1.Service)
	if !ok {
		return
	}
	key, ok := serviceAgent(s)
	if !ok {
		return
	}
	r := serviceRoute{clusterIP: s.Spec.ClusterIP}
	for _, port := range s.Spec.Ports {
		switch port.Name {
		case v1alpha1.ServingPortName:
			r.serving = port.Port
			r.tls = port.AppProtocol != nil && *port.AppProtocol == v1alpha1.ServingAppProtocolTLS
		case v1alpha1.AdminPortName:
			r.admin = port.Port
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.services[key] = r
	p.publishLocked(key)
}

func (p *Platform) deleteService(obj any) {
	if t, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	s, ok := obj.(*corev1.Service)
	if !ok {
		return
	}
	key, ok := serviceAgent(s)
	if !ok {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.services, key)
	p.publishLocked(key)
}
