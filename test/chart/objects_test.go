package chart

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/flint-dev/flint/api/v1alpha1"
	"github.com/flint-dev/flint/internal/bootstrap"
	"github.com/flint-dev/flint/internal/cli"
)

func convert[T any](t *testing.T, u *unstructured.Unstructured) *T {
	t.Helper()
	out := new(T)
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(u.Object, out, true); err != nil {
		t.Fatalf("%s %s: %v", u.GetKind(), u.GetName(), err)
	}
	return out
}

// rule is one RBAC rule flattened to a comparable string.
func rules(rs []rbacv1.PolicyRule) []string {
	var out []string
	for _, r := range rs {
		out = append(out, fmt.Sprintf("%s %s %s", strings.Join(r.APIGroups, ","),
			strings.Join(r.Resources, ","), strings.Join(r.Verbs, ",")))
	}
	return out
}

// TestRBACIsLeastPrivilege pins every rule the chart grants. A change here
// is a change of what Flint may do in users' clusters: review it as such.
func TestRBACIsLeastPrivilege(t *testing.T) {
	t.Run("Default", func(t *testing.T) { checkRBAC(t, nil) })
	// Sidecar TLS adds, in the release namespace only, get of the CA Secret
	// by name and a Role for the bundle ConfigMap; nothing cluster-wide (the
	// agents' certificate Secrets are written with the create/patch above).
	t.Run("SidecarTLS", func(t *testing.T) { checkRBAC(t, tlsOn) })

	if n := len(find(render(t, map[string]any{"rbac": map[string]any{"create": false}}), "ClusterRole")); n != 0 {
		t.Errorf("rbac.create=false still renders %d ClusterRoles", n)
	}
}

func checkRBAC(t *testing.T, values map[string]any) {
	tls := values != nil
	objs := render(t, values)
	sharedSecrets := []string{"rel-flint-control-token", "rel-flint-session-keys", "rel-flint-gateway-token", "rel-flint-api-keys"}
	if tls {
		sharedSecrets = append(sharedSecrets, "rel-flint-sidecar-ca")
	}
	want := map[string][]string{
		"ClusterRole/rel-flint-manager": {
			"flint.dev agents get,list,watch,update,patch",
			"flint.dev agents/status get,update,patch",
			"flint.dev agents/scale get,update,patch",
			"flint.dev agents/finalizers update",
			"apps deployments get,list,watch,create,update,patch,delete",
			" services get,list,watch,create,update,patch,delete",
			" pods get,list,watch",
			"discovery.k8s.io endpointslices get,list,watch",
			" secrets create,patch",
			" events create,patch",
			"events.k8s.io events create,patch",
		},
		"Role/rel-flint-manager-secrets": {
			" secrets get",
			" secrets create",
		},
		"Role/rel-flint-manager-leader-election": {
			"coordination.k8s.io leases get,create,update",
			" events create,patch",
		},
		"Role/rel-flint-manager-sidecar-ca": {
			" configmaps get,update",
			" configmaps create",
		},
		"ClusterRole/rel-flint-gateway": {
			"flint.dev agents get,list,watch",
			"flint.dev agents/status patch",
			"discovery.k8s.io endpointslices get,list,watch",
			" services get,list,watch",
		},
	}
	if !tls {
		delete(want, "Role/rel-flint-manager-sidecar-ca")
	}
	for _, kind := range []string{"ClusterRole", "Role"} {
		for _, u := range find(objs, kind) {
			key := kind + "/" + u.GetName()
			role := convert[rbacv1.ClusterRole](t, u) // Role has the same shape
			for _, r := range role.Rules {
				all := slices.Concat(r.APIGroups, r.Resources, r.Verbs, r.ResourceNames)
				if slices.Contains(all, "*") || len(r.NonResourceURLs) > 0 {
					t.Errorf("%s has a wildcard or non-resource rule: %+v", key, r)
				}
				if slices.ContainsFunc(r.Verbs, func(v string) bool {
					return v == "escalate" || v == "bind" || v == "impersonate"
				}) {
					t.Errorf("%s grants privilege escalation: %+v", key, r)
				}
				// Secrets: only the manager. In its own namespace it reads
				// the shared Secrets by name and creates them when missing;
				// cluster-wide it writes (never reads) agents' copies of the
				// gateway token.
				if slices.Contains(r.Resources, "secrets") {
					named := slices.Equal(r.Verbs, []string{"get"}) && slices.Equal(r.ResourceNames, sharedSecrets)
					shared := key == "Role/rel-flint-manager-secrets" && u.GetNamespace() == releaseNamespace &&
						(named || slices.Equal(r.Verbs, []string{"create"}))
					agentCopies := key == "ClusterRole/rel-flint-manager" && slices.Equal(r.Verbs, []string{"create", "patch"})
					if !shared && !agentCopies {
						t.Errorf("%s grants secrets beyond get of the shared ones and writing agents' token copies: %+v", key, r)
					}
				}
				// ConfigMaps: only the manager's CA bundle, with sidecar TLS.
				if slices.Contains(r.Resources, "configmaps") {
					bundle := slices.Equal(r.Verbs, []string{"get", "update"}) &&
						slices.Equal(r.ResourceNames, []string{"rel-flint-sidecar-ca-bundle"})
					create := slices.Equal(r.Verbs, []string{"create"}) && len(r.ResourceNames) == 0
					if !tls || key != "Role/rel-flint-manager-sidecar-ca" || u.GetNamespace() != releaseNamespace || !(bundle || create) {
						t.Errorf("%s grants configmaps beyond the CA bundle: %+v", key, r)
					}
				}
			}
			got := rules(role.Rules)
			if !slices.Equal(got, want[key]) {
				t.Errorf("%s rules:\n  %s\nwant\n  %s", key, strings.Join(got, "\n  "), strings.Join(want[key], "\n  "))
			}
			delete(want, key)
		}
	}
	for key := range want {
		t.Errorf("%s not rendered", key)
	}

	// Bindings give each role to its own ServiceAccount only.
	for _, kind := range []string{"ClusterRoleBinding", "RoleBinding"} {
		for _, u := range find(objs, kind) {
			b := convert[rbacv1.RoleBinding](t, u)
			component := u.GetLabels()["app.kubernetes.io/component"]
			if len(b.Subjects) != 1 || b.Subjects[0].Kind != "ServiceAccount" ||
				b.Subjects[0].Name != "rel-flint-"+component || b.Subjects[0].Namespace != releaseNamespace {
				t.Errorf("%s %s binds %+v", kind, u.GetName(), b.Subjects)
			}
		}
	}

}

// checkGatewayPolicy: invocations reach the gateway from anywhere, its
// control port only from the manager.
func checkGatewayPolicy(t *testing.T, np *networkingv1.NetworkPolicy) {
	t.Helper()
	if np.Namespace != releaseNamespace || np.Spec.PodSelector.MatchLabels["app.kubernetes.io/component"] != "gateway" {
		t.Errorf("gateway policy in %s selects %+v", np.Namespace, np.Spec.PodSelector)
	}
	if len(np.Spec.Ingress) != 2 {
		t.Fatalf("gateway policy: want 2 ingress rules (invocations, control), got %+v", np.Spec.Ingress)
	}
	invoke, control := np.Spec.Ingress[0], np.Spec.Ingress[1]
	if len(invoke.From) != 0 || len(invoke.Ports) != 1 || invoke.Ports[0].Port.IntValue() != 8080 {
		t.Errorf("invocation rule %+v, want port 8080 from anywhere", invoke)
	}
	if len(control.From) != 1 || control.From[0].PodSelector.MatchLabels["app.kubernetes.io/component"] != "manager" ||
		len(control.Ports) != 1 || control.Ports[0].Port.IntValue() != 9090 {
		t.Errorf("control rule %+v, want port 9090 from the manager only", control)
	}
}

// TestNetworkPolicy checks the policy selects agent pods by the labels the
// manager sets and opens only the ports it uses, to the gateway and manager.
func TestNetworkPolicy(t *testing.T) {
	if n := len(find(render(t, map[string]any{"networkPolicy": map[string]any{"enabled": false}}), "NetworkPolicy")); n != 0 {
		t.Errorf("networkPolicy.enabled=false renders %d NetworkPolicies", n)
	}
	objs := render(t, map[string]any{"networkPolicy": map[string]any{"agentNamespaces": []any{"team-a", "team-b"}}})
	var namespaces []string
	for _, u := range find(objs, "NetworkPolicy") {
		if u.GetName() == "rel-flint-gateway" {
			checkGatewayPolicy(t, convert[networkingv1.NetworkPolicy](t, u))
			continue
		}
		namespaces = append(namespaces, u.GetNamespace())
		np := convert[networkingv1.NetworkPolicy](t, u)
		sel := np.Spec.PodSelector
		if sel.MatchLabels[v1alpha1.LabelManagedBy] != v1alpha1.ManagedByValue ||
			len(sel.MatchExpressions) != 1 || sel.MatchExpressions[0].Key != v1alpha1.LabelAgent {
			t.Errorf("policy in %s selects %+v, not the manager's agent pod labels", u.GetNamespace(), sel)
		}
		if !slices.Equal(np.Spec.PolicyTypes, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}) {
			t.Errorf("policy types %v", np.Spec.PolicyTypes)
		}
		if len(np.Spec.Ingress) != 3 {
			t.Fatalf("want 3 ingress rules (gateway, manager's scrapes, gateway's probes), got %+v", np.Spec.Ingress)
		}
		for i, want := range []struct {
			component string
			port      int
		}{{"gateway", v1alpha1.ServingPort}, {"manager", v1alpha1.AdminPort}, {"gateway", v1alpha1.AdminPort}} {
			in := np.Spec.Ingress[i]
			if len(in.From) != 1 || len(in.Ports) != 1 {
				t.Fatalf("rule %d: %+v", i, in)
			}
			from := in.From[0]
			if from.PodSelector.MatchLabels["app.kubernetes.io/component"] != want.component ||
				from.NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"] != releaseNamespace {
				t.Errorf("rule %d admits %+v, want the %s pods of %s", i, from, want.component, releaseNamespace)
			}
			if in.Ports[0].Port.IntValue() != want.port {
				t.Errorf("rule %d opens port %v, want %d", i, in.Ports[0].Port, want.port)
			}
		}
	}
	if !slices.Equal(namespaces, []string{"team-a", "team-b"}) {
		t.Errorf("policies in %v, want one in each agent namespace", namespaces)
	}
}

// TestArgsParse feeds the rendered container args to the real `flint`
// command line (with -h appended, so it stops after parsing): an unknown
// flag or a malformed value fails here rather than in a crash-looping pod.
func TestArgsParse(t *testing.T) {
	objs := render(t, map[string]any{
		"gateway": map[string]any{"publicURL": "https://agents.example.com/"},
		"manager": map[string]any{"extraArgs": []any{"--namespaces=team-a"}},
	})
	for _, name := range []string{"rel-flint-manager", "rel-flint-gateway"} {
		d := convert[appsv1.Deployment](t, one(t, objs, "Deployment", name))
		c := d.Spec.Template.Spec.Containers[0]
		var stderr bytes.Buffer
		if code := cli.Main(append(withSecretFiles(t, d), "-h"), &bytes.Buffer{}, &stderr); code != 0 {
			t.Errorf("%s args %q: flint exits %d:\n%s", name, c.Args, code, firstLine(stderr.String()))
		}
		sc := c.SecurityContext
		if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
			sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			t.Errorf("%s container security context %+v", name, sc)
		}
		if psc := d.Spec.Template.Spec.SecurityContext; psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot {
			t.Errorf("%s does not run as non-root", name)
		}
	}
	mgr := convert[appsv1.Deployment](t, one(t, objs, "Deployment", "rel-flint-manager"))
	args := mgr.Spec.Template.Spec.Containers[0].Args
	for _, want := range []string{
		"manager", "--leader-elect=true", "--sidecar-image=ghcr.io/flint-dev/flint:v0.1.0",
		"--gateway-url=https://agents.example.com", "--namespaces=team-a",
		// The autoscaler reads every gateway pod through the headless control Service.
		"--gateways=http://rel-flint-gateway-control.flint-system.svc:9090",
		// The shared Secrets, created by the manager when missing.
		"--control-token-secret=rel-flint-control-token", "--session-key-secret=rel-flint-session-keys",
		"--gateway-token-secret=rel-flint-gateway-token", "--api-keys-secret=rel-flint-api-keys",
	} {
		if !slices.Contains(args, want) {
			t.Errorf("manager args %q lack %q", args, want)
		}
	}
	gw := convert[appsv1.Deployment](t, one(t, objs, "Deployment", "rel-flint-gateway"))
	gwArgs := gw.Spec.Template.Spec.Containers[0].Args
	for _, want := range []string{"--public-url=https://agents.example.com", "--control-addr=:9090", "--admin-addr=:9091",
		"--direct-to-pod=true", "--drain-delay=5s"} {
		if gwArgs[0] != "gateway" || !slices.Contains(gwArgs, want) {
			t.Errorf("gateway args %q lack %q", gwArgs, want)
		}
	}
	// Every file flag of the gateway reads a mounted shared Secret.
	for flag, secret := range map[string]string{
		"--control-token-file": "rel-flint-control-token", "--session-key-file": "rel-flint-session-keys",
		"--sidecar-token-file": "rel-flint-gateway-token", "--api-keys-file": "rel-flint-api-keys",
	} {
		if got := secretOfFlag(t, gw, flag); got != secret {
			t.Errorf("gateway %s reads Secret %q, want %q", flag, got, secret)
		}
	}
	// Kubernetes kills the gateway at the grace period's end: the drain and
	// the shutdown must both fit in it.
	drain, shutdown := durationArg(t, gw, "--drain-delay", 0), durationArg(t, gw, "--shutdown-timeout", 30*time.Second)
	if grace := time.Duration(*gw.Spec.Template.Spec.TerminationGracePeriodSeconds) * time.Second; grace <= drain+shutdown {
		t.Errorf("gateway grace period %s does not cover -drain-delay %s + -shutdown-timeout %s", grace, drain, shutdown)
	}
	// The manager reads the shared Secrets through the API: it cannot
	// mount what its own start creates.
	for _, v := range mgr.Spec.Template.Spec.Volumes {
		if v.Secret != nil {
			t.Errorf("the manager mounts Secret %s: its pods would not start before it exists", v.Secret.SecretName)
		}
	}
	if svc := convert[corev1.Service](t, one(t, objs, "Service", "rel-flint-gateway-control")); svc.Spec.ClusterIP != corev1.ClusterIPNone {
		t.Errorf("the gateways' control Service must be headless (one DNS record per gateway pod), has ClusterIP %q", svc.Spec.ClusterIP)
	}

	// Without a public URL, agents' status.url points at the in-cluster Service.
	objs = render(t, nil)
	mgr = convert[appsv1.Deployment](t, one(t, objs, "Deployment", "rel-flint-manager"))
	if args := mgr.Spec.Template.Spec.Containers[0].Args; !slices.Contains(args, "--gateway-url=http://rel-flint-gateway.flint-system.svc") {
		t.Errorf("default manager args %q lack the in-cluster gateway URL", args)
	}
}

// durationArg is the value of a duration flag in d's container args, or def.
func durationArg(t *testing.T, d *appsv1.Deployment, flag string, def time.Duration) time.Duration {
	t.Helper()
	for _, a := range d.Spec.Template.Spec.Containers[0].Args {
		if v, ok := strings.CutPrefix(a, flag+"="); ok {
			dur, err := time.ParseDuration(v)
			if err != nil {
				t.Fatalf("%s %s: %v", d.Name, a, err)
			}
			return dur
		}
	}
	return def
}

// firstLine is where the flag package says what is wrong, before the usage.
func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// secretOfFlag is the Secret mounted where the file flag of d's container
// points, or "".
func secretOfFlag(t *testing.T, d *appsv1.Deployment, flag string) string {
	t.Helper()
	c := d.Spec.Template.Spec.Containers[0]
	for _, a := range c.Args {
		path, ok := strings.CutPrefix(a, flag+"=")
		if !ok {
			continue
		}
		for _, m := range c.VolumeMounts {
			if strings.HasPrefix(path, m.MountPath+"/") {
				for _, v := range d.Spec.Template.Spec.Volumes {
					if v.Name == m.Name && v.Secret != nil {
						// The processes follow these files through a rotation;
						// the kubelet never updates a subPath mount.
						if m.SubPath != "" || m.SubPathExpr != "" {
							t.Errorf("%s reads Secret %s through a subPath mount: a rotation would never reach it", flag, v.Secret.SecretName)
						}
						return v.Secret.SecretName
					}
				}
			}
		}
	}
	return ""
}

// withSecretFiles is d's container args with every path into a mounted
// Secret replaced by a file holding a valid secret, as the kubelet would
// mount it, since some file flags are read as they are parsed and the
// others when the process starts.
func withSecretFiles(t *testing.T, d *appsv1.Deployment) []string {
	t.Helper()
	c := d.Spec.Template.Spec.Containers[0]
	dir := t.TempDir()
	args := slices.Clone(c.Args)
	for i, a := range args {
		flag, path, ok := strings.Cut(a, "=")
		if !ok {
			continue
		}
		for _, m := range c.VolumeMounts {
			if rest, ok := strings.CutPrefix(path, m.MountPath+"/"); ok && m.ReadOnly {
				file := filepath.Join(dir, m.Name, rest)
				if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(file, append(bootstrap.Token(), '\n'), 0o600); err != nil {
					t.Fatal(err)
				}
				args[i] = flag + "=" + file
			}
		}
	}
	return args
}
