package kube

import (
	"net"
	"slices"
	"strconv"
	"strings"

	discoveryv1 "k8s.io/api/discovery/v1"
	toolscache "k8s.io/client-go/tools/cache"

	"github.com/flint-dev/flint/api/v1alpha1"
	"github.com/flint-dev/flint/internal/platform"
)

// sliceAgent returns the agent an EndpointSlice belongs to: slices name
// their Service, and an agent's Service has the agent's name. Slices of
// Services Flint does not manage are ignored even if the cache lets them in.
func sliceAgent(s *discoveryv1.EndpointSlice) (platform.AgentKey, bool) {
	svc := s.Labels[discoveryv1.LabelServiceName]
	if svc == "" || s.Labels[v1alpha1.LabelManagedBy] != v1alpha1.ManagedByValue {
		return platform.AgentKey{}, false
	}
	return platform.AgentKey{Namespace: s.Namespace, Name: svc}, true
}

func (p *Platform) upsertSlice(obj any) {
	s, ok := obj.(*discoveryv1.EndpointSlice)
	if !ok {
		return
	}
	key, ok := sliceAgent(s)
	if !ok {
		return
	}
	eps := endpointsOf(s, p.serviceDNSName(key))
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.slices[key] == nil {
		p.slices[key] = map[string]sliceEndpoints{}
	}
	p.slices[key][sliceID(s)] = eps
	p.publishLocked(key)
}

func (p *Platform) deleteSlice(obj any) {
	if t, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	s, ok := obj.(*discoveryv1.EndpointSlice)
	if !ok {
		return
	}
	key, ok := sliceAgent(s)
	if !ok {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.slices[key], sliceID(s))
	p.publishLocked(key)
}

// sliceID orders an agent's slices IPv4 before IPv6, so that on a
// dual-stack cluster each replica is reached on its IPv4 address, always
// the same one.
func sliceID(s *discoveryv1.EndpointSlice) string {
	return string(s.AddressType) + "/" + s.Name
}

// sliceEndpoints is what one EndpointSlice says about an agent's replicas.
type sliceEndpoints struct {
	ready    []platform.Endpoint
	draining []platform.Endpoint // terminating: no new work, sessions finish
	pending  []platform.Endpoint // not ready yet: probed by the gateway (probe.go)
}

// publishLocked recomputes an agent's ready and draining endpoints from its
// slices and wakes waiters if they changed.
func (p *Platform) publishLocked(key platform.AgentKey) {
	bySlice := p.slices[key]
	if len(bySlice) == 0 {
		delete(p.slices, key)
		p.endpoints.Delete(key)
		p.draining.Delete(key)
		p.admitLocked(key, nil, nil) // stops its probes
		return
	}
	ids := make([]string, 0, len(bySlice))
	for id := range bySlice {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var readyBySlice, drainingBySlice, pendingBySlice [][]platform.Endpoint
	for _, id := range ids {
		readyBySlice = append(readyBySlice, bySlice[id].ready)
		drainingBySlice = append(drainingBySlice, bySlice[id].draining)
		pendingBySlice = append(pendingBySlice, bySlice[id].pending)
	}
	ready, draining := union(readyBySlice...), union(drainingBySlice...)
	if p.routesToServiceLocked(key) { // routing.go
		p.admitLocked(key, ready, nil)
		if svc, ok := p.serviceRouteLocked(key, ready); ok {
			ready, draining = svc, nil
		}
	} else {
		ready = p.admitLocked(key, ready, union(pendingBySlice...)) // probe.go
	}
	platform.PublishEndpoints(key, &p.endpoints, &p.draining, ready, draining)
}

// union merges lists of endpoints (the slices', in slice order), sorted by
// replica. A replica listed in several slices (while the EndpointSlice
// controller moves it, or once per address family) counts once, at the
// address of the first slice that lists it.
func union(lists ...[]platform.Endpoint) []platform.Endpoint {
	seen := map[string]bool{}
	var eps []platform.Endpoint
	for _, list := range lists {
		for _, ep := range list {
			if !seen[ep.Replica] {
				seen[ep.Replica] = true
				eps = append(eps, ep)
			}
		}
	}
	slices.SortFunc(eps, func(a, b platform.Endpoint) int {
		return strings.Compare(a.Replica+" "+a.Addr, b.Replica+" "+b.Addr)
	})
	return eps
}

// endpointsOf sorts a slice's endpoints into ready ones and terminating
// ones, each reached on its first address (the others are the same pod) at
// the sidecar's serving and admin ports as the slice names them. When the
// serving port's appProtocol is https, endpoints carry tlsName (the
// Service's DNS name) to verify the sidecar's certificate against.
func endpointsOf(s *discoveryv1.EndpointSlice, tlsName string) sliceEndpoints {
	var out sliceEndpoints
	if s.AddressType != discoveryv1.AddressTypeIPv4 && s.AddressType != discoveryv1.AddressTypeIPv6 {
		return out
	}
	var serving, admin int32
	tls := false
	for _, port := range s.Ports {
		if port.Name == nil || port.Port == nil {
			continue
		}
		switch *port.Name {
		case v1alpha1.ServingPortName:
			serving = *port.Port
			tls = port.AppProtocol != nil && *port.AppProtocol == v1alpha1.ServingAppProtocolTLS
		case v1alpha1.AdminPortName:
			admin = *port.Port
		}
	}
	if !tls {
		tlsName = ""
	}
	if serving == 0 || admin == 0 {
		return out
	}
	for _, e := range s.Endpoints {
		if len(e.Addresses) == 0 {
			continue
		}
		addr := e.Addresses[0]
		replica := addr
		if e.TargetRef != nil && e.TargetRef.Name != "" {
			replica = e.TargetRef.Name
		}
		ep := platform.Endpoint{
			Addr:          net.JoinHostPort(addr, strconv.Itoa(int(serving))),
			AdminAddr:     net.JoinHostPort(addr, strconv.Itoa(int(admin))),
			Replica:       replica,
			TLSServerName: tlsName,
		}
		c := e.Conditions
		switch {
		case c.Terminating != nil && *c.Terminating:
			out.draining = append(out.draining, ep)
		// A nil ready condition means ready: the API's rule for unknown state.
		case c.Ready == nil || *c.Ready:
			out.ready = append(out.ready, ep)
		default:
			out.pending = append(out.pending, ep)
		}
	}
	return out
}

// DrainingEndpoints implements platform.Draining: replicas whose pods are
// terminating. They stay listed until the pod has exited; the gateway sends
// them only requests of the sessions they hold.
func (p *Platform) DrainingEndpoints(key platform.AgentKey) ([]platform.Endpoint, <-chan struct{}) {
	return p.draining.Get(key)
}
