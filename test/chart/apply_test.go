package chart

import (
	"fmt"
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flint-dev/flint/internal/testenv"
)

// TestApplyToAPIServer installs the rendered chart into a real API server
// with server-side apply, so every object is validated against the real
// schemas (the CRD's CEL rules compile, RBAC and NetworkPolicy fields are
// right), then asks the API server's RBAC authorizer what the manager and
// gateway ServiceAccounts may do.
func TestApplyToAPIServer(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	ctx := t.Context()
	for _, ns := range []string{releaseNamespace, "team-a"} {
		if err := env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
	}
	base := map[string]any{"networkPolicy": map[string]any{"agentNamespaces": []any{"team-a"}}}
	// apply installs or upgrades the release with base and more values.
	apply := func(more []any) {
		vals := base
		for _, m := range more {
			vals = merge(vals, m.(map[string]any))
		}
		for _, o := range render(t, vals) {
			opts := []client.ApplyOption{client.FieldOwner("helm"), client.ForceOwnership}
			if o.GetKind() == "CustomResourceDefinition" {
				// testenv installed the same CRD from deploy/crds; validate only.
				opts = append(opts, client.DryRunAll)
			}
			if err := env.Client.Apply(ctx, client.ApplyConfigurationFromUnstructured(o), opts...); err != nil {
				t.Errorf("apply %s %s/%s: %v", o.GetKind(), o.GetNamespace(), o.GetName(), err)
			}
		}
	}
	apply(nil)
	if t.Failed() {
		return
	}
	t.Run("SecretsStayPut", func(t *testing.T) { checkSecretsStayPut(t, env, apply) })

	sa := func(component string) string {
		return fmt.Sprintf("system:serviceaccount:%s:rel-flint-%s", releaseNamespace, component)
	}
	for _, tc := range []struct {
		user                           string
		verb, group, resource, sub, ns string
		allowed                        bool
	}{
		{sa("manager"), "update", "flint.dev", "agents", "scale", "team-a", true},
		{sa("manager"), "patch", "flint.dev", "agents", "status", "team-a", true},
		{sa("manager"), "create", "apps", "deployments", "", "team-a", true},
		{sa("manager"), "delete", "", "services", "", "team-a", true},
		{sa("manager"), "list", "", "pods", "", "team-a", true},
		{sa("manager"), "create", "coordination.k8s.io", "leases", "", releaseNamespace, true},
		{sa("manager"), "delete", "", "pods", "", "team-a", false},
		{sa("manager"), "get", "", "secrets", "", "team-a", false},
		{sa("manager"), "create", "", "secrets", "", "team-a", true},
		{sa("manager"), "patch", "", "secrets", "", "team-a", true},
		{sa("manager"), "list", "", "secrets", "", "team-a", false},
		{sa("manager"), "watch", "", "secrets", "", "team-a", false},
		{sa("manager"), "delete", "", "secrets", "", "team-a", false},
		{sa("manager"), "create", "", "secrets", "", releaseNamespace, true},
		{sa("manager"), "update", "", "secrets", "", releaseNamespace, false},
		{sa("manager"), "list", "", "secrets", "", releaseNamespace, false},
		{sa("gateway"), "get", "", "secrets", "", releaseNamespace, false},
		{sa("manager"), "create", "coordination.k8s.io", "leases", "", "team-a", false},
		{sa("manager"), "delete", "flint.dev", "agents", "", "team-a", false},
		{sa("gateway"), "watch", "flint.dev", "agents", "", "team-a", true},
		{sa("gateway"), "patch", "flint.dev", "agents", "status", "team-a", true},
		{sa("gateway"), "list", "discovery.k8s.io", "endpointslices", "", "team-a", true},
		{sa("gateway"), "update", "flint.dev", "agents", "", "team-a", false},
		{sa("gateway"), "update", "flint.dev", "agents", "scale", "team-a", false},
		{sa("gateway"), "get", "", "secrets", "", "team-a", false},
		{sa("gateway"), "list", "", "pods", "", "team-a", false},
	} {
		sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User:   tc.user,
			Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + releaseNamespace, "system:authenticated"},
			ResourceAttributes: &authorizationv1.ResourceAttributes{
				Namespace: tc.ns, Verb: tc.verb, Group: tc.group, Resource: tc.resource, Subresource: tc.sub,
			},
		}}
		if err := env.Client.Create(ctx, sar); err != nil {
			t.Fatal(err)
		}
		if sar.Status.Allowed != tc.allowed {
			t.Errorf("%s %s %s/%s in %s: allowed=%v, want %v (%s)", tc.user, tc.verb, tc.resource, tc.sub,
				tc.ns, sar.Status.Allowed, tc.allowed, sar.Status.Reason)
		}
	}
	// Last: it upgrades the release to sidecarTLS.enabled.
	t.Run("SidecarTLS", func(t *testing.T) { checkSidecarTLS(t, env, apply) })
}

// merge is a deep merge of b over a, as Helm merges --set over values.
func merge(a, b map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		if bm, ok := v.(map[string]any); ok {
			if am, ok := out[k].(map[string]any); ok {
				out[k] = merge(am, bm)
				continue
			}
		}
		out[k] = v
	}
	return out
}
