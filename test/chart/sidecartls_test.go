package chart

import (
	"bytes"
	"flag"
	"io"
	"path"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/flint-dev/flint/api/v1alpha1"
	"github.com/flint-dev/flint/internal/cli"
	"github.com/flint-dev/flint/internal/controller"
	"github.com/flint-dev/flint/internal/testenv"
)

var tlsOn = map[string]any{"sidecarTLS": map[string]any{"enabled": true}}

// argsWithPrefix are the container args of d starting with one of prefixes.
func argsWithPrefix(d *appsv1.Deployment, prefixes ...string) []string {
	var out []string
	for _, a := range d.Spec.Template.Spec.Containers[0].Args {
		if slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(a, p) }) {
			out = append(out, a)
		}
	}
	return out
}

// TestSidecarTLSRender: off (the default), neither process hears of sidecar
// TLS and no ConfigMap is granted; on, the manager gets the release's CA
// Secret and bundle names, the gateway mounts that bundle as a directory
// (a subPath mount is never refreshed, so a rotated CA would not be seen)
// and trusts the ca.crt in it, and both accept their flags.
func TestSidecarTLSRender(t *testing.T) {
	objs := render(t, nil)
	mgr := convert[appsv1.Deployment](t, one(t, objs, "Deployment", "rel-flint-manager"))
	gw := convert[appsv1.Deployment](t, one(t, objs, "Deployment", "rel-flint-gateway"))
	if got := argsWithPrefix(mgr, "--sidecar-tls"); len(got) != 0 {
		t.Errorf("sidecar TLS off, yet the manager gets %q", got)
	}
	if got := argsWithPrefix(gw, "--upstream-ca-file"); len(got) != 0 {
		t.Errorf("sidecar TLS off, yet the gateway gets %q", got)
	}
	for _, v := range gw.Spec.Template.Spec.Volumes {
		if v.ConfigMap != nil {
			t.Errorf("sidecar TLS off, yet the gateway mounts ConfigMap %s", v.ConfigMap.Name)
		}
	}
	// One cluster domain for both: the manager's certificate names and
	// the gateway's verification must agree.
	for _, d := range []*appsv1.Deployment{mgr, gw} {
		if got := argsWithPrefix(d, "--cluster-domain"); !slices.Equal(got, []string{"--cluster-domain=cluster.local"}) {
			t.Errorf("%s cluster domain args %q", d.Name, got)
		}
	}

	objs = render(t, merge(tlsOn, map[string]any{"clusterDomain": "corp.example"}))
	mgr = convert[appsv1.Deployment](t, one(t, objs, "Deployment", "rel-flint-manager"))
	gw = convert[appsv1.Deployment](t, one(t, objs, "Deployment", "rel-flint-gateway"))
	wantMgr := []string{"--sidecar-tls=true", "--sidecar-tls-namespace=flint-system",
		"--sidecar-tls-ca-secret=rel-flint-sidecar-ca", "--sidecar-tls-ca-bundle=rel-flint-sidecar-ca-bundle",
		"--sidecar-tls-cert-lifetime=2160h"}
	if got := argsWithPrefix(mgr, "--sidecar-tls"); !slices.Equal(got, wantMgr) {
		t.Errorf("manager sidecar TLS args\n  %q\nwant\n  %q", got, wantMgr)
	}
	for _, d := range []*appsv1.Deployment{mgr, gw} {
		if got := argsWithPrefix(d, "--cluster-domain"); !slices.Equal(got, []string{"--cluster-domain=corp.example"}) {
			t.Errorf("%s cluster domain args %q", d.Name, got)
		}
		var stderr bytes.Buffer
		if code := cli.Main(append(withSecretFiles(t, d), "-h"), io.Discard, &stderr); code != 0 {
			t.Errorf("%s args: flint exits %d: %s", d.Name, code, firstLine(stderr.String()))
		}
	}
	checkGatewayTrustsBundle(t, gw, "rel-flint-sidecar-ca-bundle")

	// Names follow the release, and a CA of the operator's own is named.
	objs = render(t, merge(tlsOn, map[string]any{"fullnameOverride": "edge",
		"sidecarTLS": map[string]any{"caSecret": "my-ca", "certLifetime": "720h"}}))
	mgr = convert[appsv1.Deployment](t, one(t, objs, "Deployment", "edge-manager"))
	for _, want := range []string{"--sidecar-tls-ca-secret=my-ca", "--sidecar-tls-ca-bundle=edge-sidecar-ca-bundle",
		"--sidecar-tls-cert-lifetime=720h"} {
		if !slices.Contains(mgr.Spec.Template.Spec.Containers[0].Args, want) {
			t.Errorf("manager args lack %s", want)
		}
	}
	checkGatewayTrustsBundle(t, convert[appsv1.Deployment](t, one(t, objs, "Deployment", "edge-gateway")), "edge-sidecar-ca-bundle")
	role := convert[rbacv1.Role](t, one(t, objs, "Role", "edge-manager-secrets"))
	if names := role.Rules[0].ResourceNames; !slices.Contains(names, "my-ca") {
		t.Errorf("the manager may not get its CA Secret my-ca: %v", names)
	}

	_, err := renderFiles(t, map[string]any{"sidecarTLS": map[string]any{"certLifetime": "90d"}})
	if err == nil || !strings.Contains(err.Error(), "/sidecarTLS/certLifetime") {
		t.Errorf("certLifetime=90d: %v", err)
	}
	_, err = renderFiles(t, map[string]any{"clusterDomain": "cluster.local."})
	if err == nil || !strings.Contains(err.Error(), "/clusterDomain") {
		t.Errorf("clusterDomain=cluster.local.: %v", err)
	}
}

// checkGatewayTrustsBundle: the gateway's -upstream-ca-file is ca.crt in a
// whole-directory, read-only, non-optional mount of the bundle ConfigMap.
func checkGatewayTrustsBundle(t *testing.T, gw *appsv1.Deployment, bundle string) {
	t.Helper()
	c := gw.Spec.Template.Spec.Containers[0]
	files := argsWithPrefix(gw, "--upstream-ca-file=")
	if len(files) != 1 {
		t.Fatalf("gateway upstream CA args %q", files)
	}
	file := strings.TrimPrefix(files[0], "--upstream-ca-file=")
	if path.Base(file) != controller.CABundleKey {
		t.Errorf("gateway trusts %s, not the bundle's key %s", file, controller.CABundleKey)
	}
	var mount *corev1.VolumeMount
	for i, m := range c.VolumeMounts {
		if m.MountPath == path.Dir(file) {
			mount = &c.VolumeMounts[i]
		}
	}
	if mount == nil {
		t.Fatalf("nothing mounted at %s: %+v", path.Dir(file), c.VolumeMounts)
	}
	if mount.SubPath != "" || mount.SubPathExpr != "" || !mount.ReadOnly {
		t.Errorf("CA bundle mount %+v: want a read-only directory (the kubelet never refreshes a subPath)", mount)
	}
	for _, v := range gw.Spec.Template.Spec.Volumes {
		if v.Name != mount.Name {
			continue
		}
		if v.ConfigMap == nil || v.ConfigMap.Name != bundle || len(v.ConfigMap.Items) != 0 {
			t.Errorf("volume %s is %+v, want all of ConfigMap %s", v.Name, v.VolumeSource, bundle)
		} else if v.ConfigMap.Optional != nil && *v.ConfigMap.Optional {
			t.Errorf("CA bundle volume is optional: a gateway could start trusting nothing")
		}
		return
	}
	t.Errorf("no volume %s", mount.Name)
}

// managerConfig is the controller configuration the rendered manager's
// args make, parsed by the manager's own flags.
func managerConfig(t *testing.T, mgr *appsv1.Deployment) controller.Config {
	t.Helper()
	cfg := controller.DefaultConfig("v0.1.0")
	fs := flag.NewFlagSet("manager", flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	var args []string
	for _, a := range mgr.Spec.Template.Spec.Containers[0].Args[1:] {
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if fs.Lookup(name) != nil {
			args = append(args, a)
		}
	}
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// checkSidecarTLS upgrades the applied release to sidecarTLS.enabled and
// shows the chart's RBAC is what the manager needs and no more: the API
// server's authorizer answers for each object, then a reconciler acting as
// the manager's ServiceAccount, configured by the rendered args, creates the
// CA and bundle and issues an agent's certificate, and does so again after a
// restart without being able to read that certificate back.
func checkSidecarTLS(t *testing.T, env *testenv.Env, apply func([]any)) {
	ctx := t.Context()
	apply([]any{tlsOn})
	if t.Failed() {
		return
	}
	sa := func(component string) string {
		return "system:serviceaccount:" + releaseNamespace + ":rel-flint-" + component
	}
	for _, tc := range []struct {
		user                     string
		verb, resource, name, ns string
		allowed                  bool
	}{
		{sa("manager"), "get", "secrets", "rel-flint-sidecar-ca", releaseNamespace, true},
		{sa("manager"), "create", "secrets", "", releaseNamespace, true},
		{sa("manager"), "update", "secrets", "rel-flint-sidecar-ca", releaseNamespace, false},
		{sa("manager"), "delete", "secrets", "rel-flint-sidecar-ca", releaseNamespace, false},
		{sa("manager"), "get", "secrets", "other", releaseNamespace, false},
		{sa("manager"), "get", "secrets", "rel-flint-sidecar-ca", "team-a", false},
		{sa("manager"), "get", "secrets", "echo-flint-tls", "team-a", false},
		{sa("manager"), "patch", "secrets", "echo-flint-tls", "team-a", true},
		{sa("manager"), "get", "configmaps", "rel-flint-sidecar-ca-bundle", releaseNamespace, true},
		{sa("manager"), "update", "configmaps", "rel-flint-sidecar-ca-bundle", releaseNamespace, true},
		{sa("manager"), "create", "configmaps", "", releaseNamespace, true},
		{sa("manager"), "get", "configmaps", "other", releaseNamespace, false},
		{sa("manager"), "update", "configmaps", "other", releaseNamespace, false},
		{sa("manager"), "delete", "configmaps", "rel-flint-sidecar-ca-bundle", releaseNamespace, false},
		{sa("manager"), "list", "configmaps", "", releaseNamespace, false},
		{sa("manager"), "create", "configmaps", "", "team-a", false},
		{sa("manager"), "get", "configmaps", "rel-flint-sidecar-ca-bundle", "team-a", false},
		{sa("gateway"), "get", "secrets", "rel-flint-sidecar-ca", releaseNamespace, false},
		{sa("gateway"), "get", "configmaps", "rel-flint-sidecar-ca-bundle", releaseNamespace, false},
	} {
		sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User:   tc.user,
			Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + releaseNamespace, "system:authenticated"},
			ResourceAttributes: &authorizationv1.ResourceAttributes{
				Namespace: tc.ns, Verb: tc.verb, Resource: tc.resource, Name: tc.name,
			},
		}}
		if err := env.Client.Create(ctx, sar); err != nil {
			t.Fatal(err)
		}
		if sar.Status.Allowed != tc.allowed {
			t.Errorf("%s %s %s %q in %s: allowed=%v, want %v (%s)", tc.user, tc.verb, tc.resource, tc.name,
				tc.ns, sar.Status.Allowed, tc.allowed, sar.Status.Reason)
		}
	}

	// The manager as its ServiceAccount, with the rendered flags.
	mgr := convert[appsv1.Deployment](t, one(t, render(t, tlsOn), "Deployment", "rel-flint-manager"))
	cfg := managerConfig(t, mgr)
	if !cfg.SidecarTLS.Enabled || cfg.SidecarTLS.Namespace != releaseNamespace {
		t.Fatalf("rendered manager args make %+v", cfg.SidecarTLS)
	}
	agent := &v1alpha1.Agent{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "echo"}}
	agent.Spec.Container.Image = "example.com/echo:1"
	agent.Spec.Container.Port = 8080
	if err := env.Client.Create(ctx, agent); err != nil {
		t.Fatal(err)
	}
	req := reconcile.Request{NamespacedName: types.NamespacedName{Namespace: "team-a", Name: "echo"}}
	certOf := func() []byte {
		t.Helper()
		r, err := controller.NewReconciler(asManager(t, env), cfg, nil, nil) // a (re)started manager
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.Reconcile(ctx, req); err != nil {
			t.Fatalf("reconcile as the manager's ServiceAccount: %v", err)
		}
		var s corev1.Secret
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: "team-a", Name: controller.SidecarTLSSecretName("echo")}, &s); err != nil {
			t.Fatalf("the agent's certificate: %v", err)
		}
		return s.Data[corev1.TLSCertKey]
	}
	first := certOf()
	var ca corev1.Secret
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: releaseNamespace, Name: "rel-flint-sidecar-ca"}, &ca); err != nil {
		t.Fatalf("CA Secret: %v", err)
	}
	var bundle corev1.ConfigMap
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: releaseNamespace, Name: "rel-flint-sidecar-ca-bundle"}, &bundle); err != nil {
		t.Fatalf("CA bundle: %v", err)
	}
	if !strings.HasPrefix(bundle.Data[controller.CABundleKey], string(ca.Data[corev1.TLSCertKey])) {
		t.Error("the bundle does not start with the CA certificate")
	}
	// Without get on agents' Secrets a restarted manager cannot see the
	// certificate it issued: it issues a new one (the documented price of
	// not reading every Secret of the cluster), from the same CA.
	if second := certOf(); len(second) == 0 || bytes.Equal(second, first) {
		t.Errorf("after a restart: certificate %d bytes, same as before: %v", len(second), bytes.Equal(second, first))
	}
	var caAfter corev1.Secret
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: releaseNamespace, Name: "rel-flint-sidecar-ca"}, &caAfter); err != nil {
		t.Fatal(err)
	}
	if caAfter.ResourceVersion != ca.ResourceVersion {
		t.Error("a manager restart changed the CA Secret")
	}
}
