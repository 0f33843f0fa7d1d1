package chart

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
)

const (
	serviceMonitorAPI = "monitoring.coreos.com/v1/ServiceMonitor"
	podMonitorAPI     = "monitoring.coreos.com/v1/PodMonitor"
)

// TestMetricsServices: each component's metrics port has a Service, the
// gateway's on its admin port.
func TestMetricsServices(t *testing.T) {
	objs := render(t, nil)
	for name, want := range map[string]struct {
		port   int32
		target string
	}{"rel-flint-gateway-metrics": {9091, "admin"}, "rel-flint-manager-metrics": {8080, "metrics"}} {
		svc := convert[corev1.Service](t, one(t, objs, "Service", name))
		if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != want.port || svc.Spec.Ports[0].TargetPort.StrVal != want.target {
			t.Errorf("%s ports %+v, want %d -> %s", name, svc.Spec.Ports, want.port, want.target)
		}
	}
}

// TestMonitorsOnlyWhenAskedAndServed: ServiceMonitors and the PodMonitor
// render only when enabled and when the cluster serves their CRDs (a
// cluster without the Prometheus Operator would refuse the install).
func TestMonitorsOnlyWhenAskedAndServed(t *testing.T) {
	on := map[string]any{"watchNamespaces": []any{"team-a"}, "metrics": map[string]any{
		"serviceMonitor": map[string]any{"enabled": true, "labels": map[string]any{"release": "prom"}},
		"podMonitor":     map[string]any{"enabled": true},
	}}
	for _, tc := range []struct {
		name   string
		values map[string]any
		apis   []string
		sm, pm int
	}{
		{"off", nil, []string{serviceMonitorAPI, podMonitorAPI}, 0, 0},
		{"on without the CRDs", on, nil, 0, 0},
		{"on with the CRDs", on, []string{serviceMonitorAPI, podMonitorAPI}, 2, 1},
	} {
		objs := render(t, tc.values, tc.apis...)
		sms, pms := find(objs, "ServiceMonitor"), find(objs, "PodMonitor")
		if len(sms) != tc.sm || len(pms) != tc.pm {
			t.Errorf("%s: %d ServiceMonitors, %d PodMonitors; want %d, %d", tc.name, len(sms), len(pms), tc.sm, tc.pm)
			continue
		}
		for _, sm := range sms {
			if sm.GetLabels()["release"] != "prom" {
				t.Errorf("%s lacks the extra labels", sm.GetName())
			}
		}
		for _, pm := range pms {
			names := stringsAt(pm.Object, "spec", "namespaceSelector", "matchNames")
			port, _ := walk(pm.Object, []string{"spec", "podMetricsEndpoints", "0", "port"}).(string)
			if len(names) != 1 || names[0] != "team-a" || port != "admin" {
				t.Errorf("PodMonitor scrapes %v port %q, want team-a port admin", names, port)
			}
		}
	}
}

// TestNetworkPolicyAdmitsScrapers: metricsFrom opens the sidecars' and the
// gateways' admin ports to the scrapers, and nothing else.
func TestNetworkPolicyAdmitsScrapers(t *testing.T) {
	prom := map[string]any{"namespaceSelector": map[string]any{"matchLabels": map[string]any{"kubernetes.io/metadata.name": "monitoring"}}}
	objs := render(t, map[string]any{"watchNamespaces": []any{"team-a"}, "networkPolicy": map[string]any{"metricsFrom": []any{prom}}})
	agents := convert[networkingv1.NetworkPolicy](t, one(t, objs, "NetworkPolicy", "rel-flint-agents"))
	if agents.Namespace != "team-a" {
		t.Errorf("agents' policy in %s, want team-a (watchNamespaces)", agents.Namespace)
	}
	gw := convert[networkingv1.NetworkPolicy](t, one(t, objs, "NetworkPolicy", "rel-flint-gateway"))
	for _, tc := range []struct {
		np   *networkingv1.NetworkPolicy
		port int
	}{{agents, 8022}, {gw, 9091}} {
		last := tc.np.Spec.Ingress[len(tc.np.Spec.Ingress)-1]
		if len(last.From) != 1 || last.From[0].NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"] != "monitoring" ||
			len(last.Ports) != 1 || last.Ports[0].Port.IntValue() != tc.port {
			t.Errorf("%s: scrape rule %+v, want port %d from monitoring", tc.np.Name, last, tc.port)
		}
	}
}

// stringsAt is the list of strings at path in obj.
func stringsAt(obj map[string]any, path ...string) []string {
	v, _ := walk(obj, path).([]any)
	var out []string
	for _, e := range v {
		if s, ok := e.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// walk follows map keys and list indexes ("0").
func walk(v any, path []string) any {
	for _, p := range path {
		switch c := v.(type) {
		case map[string]any:
			v = c[p]
		case []any:
			i := 0
			for _, ch := range p {
				i = i*10 + int(ch-'0')
			}
			if i >= len(c) {
				return nil
			}
			v = c[i]
		default:
			return nil
		}
	}
	return v
}
