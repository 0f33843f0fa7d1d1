package chart

import (
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"

	"github.com/flint-dev/flint/internal/cli"
)

func deployment(t *testing.T, values map[string]any, component string) *appsv1.Deployment {
	t.Helper()
	return convert[appsv1.Deployment](t, one(t, render(t, values), "Deployment", "rel-flint-"+component))
}

// TestGatewayGracePeriodFollowsDrain: the gateway's grace period is its
// drain delay plus its shutdown timeout plus 5s, so a longer drainDelay
// never gets the pod killed mid-drain.
func TestGatewayGracePeriodFollowsDrain(t *testing.T) {
	for _, tc := range []struct {
		drain, shutdown string
		want            int64
	}{{"5s", "30s", 40}, {"30s", "1m", 95}, {"1m30s", "500ms", 96}, {"0s", "2m", 125}} {
		gw := deployment(t, map[string]any{"gateway": map[string]any{"drainDelay": tc.drain, "shutdownTimeout": tc.shutdown}}, "gateway")
		got := *gw.Spec.Template.Spec.TerminationGracePeriodSeconds
		drain, shutdown := durationArg(t, gw, "--drain-delay", -1), durationArg(t, gw, "--shutdown-timeout", -1)
		if got != tc.want || time.Duration(got)*time.Second <= drain+shutdown {
			t.Errorf("drainDelay %s shutdownTimeout %s: grace %ds, want %d (flags %s + %s)", tc.drain, tc.shutdown, got, tc.want, drain, shutdown)
		}
	}
}

// TestManagerReplicasNeedLeaderElection: two managers without leader
// election would both reconcile and autoscale every Agent.
func TestManagerReplicasNeedLeaderElection(t *testing.T) {
	_, err := renderFiles(t, map[string]any{"manager": map[string]any{"replicas": 2, "leaderElection": map[string]any{"enabled": false}}})
	if err == nil || !strings.Contains(err.Error(), "leader election") {
		t.Errorf("2 managers without leader election: %v", err)
	}
	deployment(t, map[string]any{"manager": map[string]any{"replicas": 1, "leaderElection": map[string]any{"enabled": false}}}, "manager")
}

// TestHADefaults: PDBs, spread over nodes and zones, startup probes.
func TestHADefaults(t *testing.T) {
	objs := render(t, nil)
	for _, c := range []string{"gateway", "manager"} {
		pdb := convert[policyv1.PodDisruptionBudget](t, one(t, objs, "PodDisruptionBudget", "rel-flint-"+c))
		if pdb.Spec.MaxUnavailable == nil || pdb.Spec.MaxUnavailable.IntValue() != 1 || pdb.Spec.MinAvailable != nil ||
			pdb.Spec.Selector.MatchLabels["app.kubernetes.io/component"] != c {
			t.Errorf("%s PDB %+v", c, pdb.Spec)
		}
		d := convert[appsv1.Deployment](t, one(t, objs, "Deployment", "rel-flint-"+c))
		spec := d.Spec.Template.Spec
		var keys []string
		for _, tsc := range spec.TopologySpreadConstraints {
			keys = append(keys, tsc.TopologyKey)
			if tsc.WhenUnsatisfiable != corev1.ScheduleAnyway || tsc.LabelSelector.MatchLabels["app.kubernetes.io/component"] != c {
				t.Errorf("%s spread %+v", c, tsc)
			}
		}
		if !slices.Equal(keys, []string{"kubernetes.io/hostname", "topology.kubernetes.io/zone"}) {
			t.Errorf("%s spreads over %v", c, keys)
		}
		if p := spec.Containers[0].StartupProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/healthz" {
			t.Errorf("%s has no startup probe on /healthz: %+v", c, p)
		}
	}
	objs = render(t, map[string]any{"gateway": map[string]any{"podDisruptionBudget": map[string]any{"enabled": false},
		"affinity": map[string]any{"nodeAffinity": map[string]any{}}}})
	if pdbs := find(objs, "PodDisruptionBudget"); len(pdbs) != 1 || pdbs[0].GetName() != "rel-flint-manager" {
		t.Errorf("gateway PDB disabled, rendered %d PDBs", len(pdbs))
	}
	if gw := convert[appsv1.Deployment](t, one(t, objs, "Deployment", "rel-flint-gateway")); len(gw.Spec.Template.Spec.TopologySpreadConstraints) != 0 {
		t.Errorf("an affinity of the operator's own still gets the default spread")
	}
}

// TestOperatorSurfaces: every scheduling and extension value reaches the
// pods of both components.
func TestOperatorSurfaces(t *testing.T) {
	for _, c := range []string{"gateway", "manager"} {
		vals := map[string]any{c: map[string]any{
			"extraVolumes":      []any{map[string]any{"name": "ca", "secret": map[string]any{"secretName": "my-ca"}}},
			"extraVolumeMounts": []any{map[string]any{"name": "ca", "mountPath": "/etc/flint/ca", "readOnly": true}},
			"extraArgs":         []any{"--log-level=debug"},
			"extraEnv":          []any{map[string]any{"name": "GOMAXPROCS", "value": "2"}},
			"podAnnotations":    map[string]any{"example.com/team": "ml"},
			"resources":         map[string]any{"requests": map[string]any{"cpu": "1"}},
			"nodeSelector":      map[string]any{"pool": "system"},
			"tolerations":       []any{map[string]any{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}},
			"topologySpreadConstraints": []any{map[string]any{"maxSkew": 2, "topologyKey": "rack", "whenUnsatisfiable": "DoNotSchedule",
				"labelSelector": map[string]any{"matchLabels": map[string]any{"app.kubernetes.io/component": c}}}},
			"priorityClassName": "system-cluster-critical",
		}}
		d := deployment(t, vals, c)
		spec := d.Spec.Template.Spec
		ctr := spec.Containers[0]
		if !slices.ContainsFunc(spec.Volumes, func(v corev1.Volume) bool { return v.Name == "ca" && v.Secret != nil }) ||
			!slices.ContainsFunc(ctr.VolumeMounts, func(m corev1.VolumeMount) bool { return m.MountPath == "/etc/flint/ca" }) {
			t.Errorf("%s: extra volume or mount missing", c)
		}
		if ctr.Args[len(ctr.Args)-1] != "--log-level=debug" || !slices.ContainsFunc(ctr.Env, func(e corev1.EnvVar) bool { return e.Name == "GOMAXPROCS" }) {
			t.Errorf("%s: extra args or env missing", c)
		}
		if d.Spec.Template.Annotations["example.com/team"] != "ml" || ctr.Resources.Requests.Cpu().String() != "1" ||
			spec.NodeSelector["pool"] != "system" || len(spec.Tolerations) != 1 || spec.PriorityClassName != "system-cluster-critical" ||
			len(spec.TopologySpreadConstraints) != 1 || spec.TopologySpreadConstraints[0].TopologyKey != "rack" {
			t.Errorf("%s: scheduling values not applied: %+v", c, spec)
		}
	}
}

// TestAuthByDefault: the gateway requires API keys unless opened on purpose.
func TestAuthByDefault(t *testing.T) {
	args := deployment(t, nil, "gateway").Spec.Template.Spec.Containers[0].Args
	if !slices.Contains(args, "--api-keys-file=/var/run/flint/api-keys/keys") {
		t.Errorf("default gateway args %q lack --api-keys-file", args)
	}
	vals := map[string]any{"gateway": map[string]any{"auth": map[string]any{"apiKeysSecret": map[string]any{"name": "team-keys", "key": "k"}}}}
	gw := deployment(t, vals, "gateway")
	if got := secretOfFlag(t, gw, "--api-keys-file"); got != "team-keys" ||
		!slices.Contains(gw.Spec.Template.Spec.Containers[0].Args, "--api-keys-file=/var/run/flint/api-keys/k") {
		t.Errorf("API keys from Secret team-keys key k: mounted %q, args %q", got, gw.Spec.Template.Spec.Containers[0].Args)
	}
	open := map[string]any{"gateway": map[string]any{"auth": map[string]any{"enabled": false}}}
	gw = deployment(t, open, "gateway")
	for _, a := range gw.Spec.Template.Spec.Containers[0].Args {
		if strings.HasPrefix(a, "--api-keys-file") {
			t.Errorf("auth.enabled=false still passes %s", a)
		}
	}
	for _, a := range deployment(t, open, "manager").Spec.Template.Spec.Containers[0].Args {
		if strings.HasPrefix(a, "--api-keys-secret") {
			t.Errorf("auth.enabled=false: the manager still creates API keys (%s)", a)
		}
	}
}

// TestPublicServiceHidesAdmin: the public Service exposes invocations only.
func TestPublicServiceHidesAdmin(t *testing.T) {
	svc := convert[corev1.Service](t, one(t, render(t, nil), "Service", "rel-flint-gateway"))
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].TargetPort.StrVal != "http" {
		t.Errorf("public Service ports %+v, want only the serving port", svc.Spec.Ports)
	}
	gw := deployment(t, nil, "gateway")
	ctr := gw.Spec.Template.Spec.Containers[0]
	for _, p := range []*corev1.Probe{ctr.StartupProbe, ctr.LivenessProbe, ctr.ReadinessProbe} {
		if p.HTTPGet.Port.StrVal != "admin" {
			t.Errorf("probe on port %v, want admin", p.HTTPGet.Port)
		}
	}
}

// TestReleaseScope: watchNamespaces and agentSelector reach the manager and
// the gateway (which parse them), and the NetworkPolicy covers those
// namespaces, so two releases can split one cluster.
func TestReleaseScope(t *testing.T) {
	// A set-based selector with a negation reaches the flag as written.
	const sel = "flint.dev/class in (team-b, team-c),!flint.test/release"
	for _, c := range []string{"gateway", "manager"} {
		d := convert[appsv1.Deployment](t, one(t, render(t, map[string]any{"agentSelector": sel}), "Deployment", "rel-flint-"+c))
		if args := d.Spec.Template.Spec.Containers[0].Args; !slices.Contains(args, "--agent-selector="+sel) {
			t.Errorf("%s args %q lack --agent-selector=%s", c, args, sel)
		}
	}
	vals := map[string]any{"watchNamespaces": []any{"team-a", "team-b"}, "agentSelector": "flint.dev/class=team-a"}
	objs := render(t, vals)
	for _, c := range []string{"gateway", "manager"} {
		d := convert[appsv1.Deployment](t, one(t, objs, "Deployment", "rel-flint-"+c))
		args := d.Spec.Template.Spec.Containers[0].Args
		if !slices.Contains(args, "--namespaces=team-a,team-b") || !slices.Contains(args, "--agent-selector=flint.dev/class=team-a") {
			t.Errorf("%s args %q lack the release's scope", c, args)
		}
		var stderr strings.Builder
		if code := cli.Main(append(withSecretFiles(t, d), "-h"), &strings.Builder{}, &stderr); code != 0 {
			t.Errorf("%s args do not parse: %s", c, firstLine(stderr.String()))
		}
	}
	var namespaces []string
	for _, np := range find(objs, "NetworkPolicy") {
		if np.GetName() == "rel-flint-agents" {
			namespaces = append(namespaces, np.GetNamespace())
		}
	}
	if !slices.Equal(namespaces, []string{"team-a", "team-b"}) {
		t.Errorf("agents' NetworkPolicies in %v, want team-a and team-b", namespaces)
	}
}
