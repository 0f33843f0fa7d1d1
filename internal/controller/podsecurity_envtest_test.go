package controller

import (
	"context"
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flint-dev/flint/api/v1alpha1"
	"github.com/flint-dev/flint/internal/testenv"
)

// restrictedNamespace is a namespace whose Pod Security admission (built
// into kube-apiserver) enforces the restricted level.
func restrictedNamespace(t *testing.T, env *testenv.Env) string {
	t.Helper()
	ns := env.Namespace(t)
	var obj corev1.Namespace
	if err := env.Client.Get(context.Background(), client.ObjectKey{Name: ns}, &obj); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(obj.DeepCopy())
	obj.Labels["pod-security.kubernetes.io/enforce"] = "restricted"
	obj.Labels["pod-security.kubernetes.io/enforce-version"] = "latest"
	if err := env.Client.Patch(context.Background(), &obj, patch); err != nil {
		t.Fatal(err)
	}
	return ns
}

// TestAgentPodsPassRestrictedPodSecurity: the API server's Pod Security
// admission admits the pods of agents that set nothing about security, and
// of one that uses every pod-level field, in a namespace enforcing restricted.
func TestAgentPodsPassRestrictedPodSecurity(t *testing.T) {
	t.Parallel()
	env := cluster(t)
	ns := restrictedNamespace(t, env)

	// The full agent names a RuntimeClass, which admission wants to exist.
	rc := &nodev1.RuntimeClass{ObjectMeta: metav1.ObjectMeta{Name: "nvidia"}, Handler: "nvidia"}
	if err := env.Client.Create(context.Background(), rc); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}

	// A server-side dry run of the pod template as a Pod: what the
	// ReplicaSet would create, judged by admission without creating it.
	// The stdio agent has the bridge's installer and emptyDir, and the
	// gateway token's Secret volume.
	for name, a := range map[string]*v1alpha1.Agent{"plain": testAgent(ns, "plain"), "full": fullAgent(), "stdio": stdioTestAgent()} {
		a.Namespace = ns
		tmpl, err := render(tokenConfig(t), a)
		if err != nil {
			t.Fatal(err)
		}
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, GenerateName: name + "-"}, Spec: tmpl.Spec}
		if err := env.Client.Create(context.Background(), pod, client.DryRunAll); err != nil {
			t.Errorf("%s agent's pod refused under restricted: %v", name, err)
		}
	}

	// And through the manager and kube-controller-manager: the ReplicaSet's
	// pod exists, so admission let it in.
	createAgent(t, env, ns, "admitted", func(a *v1alpha1.Agent) { a.Spec.Scaling.MinReplicas = ptr[int32](1) })
	testenv.Eventually(t, settle, func() error {
		var pods corev1.PodList
		if err := env.Client.List(context.Background(), &pods, client.InNamespace(ns), client.MatchingLabels{v1alpha1.LabelAgent: "admitted"}); err != nil {
			return err
		}
		if len(pods.Items) != 1 {
			return fmt.Errorf("%d pods, want 1", len(pods.Items))
		}
		return nil
	})
}

// TestAgentBreakingRestrictedIsReported: an Agent whose own securityContext
// breaks the namespace's level gets Ready=False / PodSecurity with the API
// server's reasons, and a Warning Event.
func TestAgentBreakingRestrictedIsReported(t *testing.T) {
	t.Parallel()
	env := cluster(t)
	ns := restrictedNamespace(t, env)
	createAgent(t, env, ns, "privileged", func(a *v1alpha1.Agent) {
		a.Spec.Scaling.MinReplicas = ptr[int32](1)
		a.Spec.Container.SecurityContext = &corev1.SecurityContext{Privileged: ptr(true)}
	})
	waitReady(t, env, ns, "privileged", "False", v1alpha1.ReasonPodSecurity,
		`violates PodSecurity "restricted:latest"`, "privileged", "change spec.container.securityContext")
	testenv.Eventually(t, settle, func() error {
		return findEvent(env, ns, "privileged", v1alpha1.ReasonPodSecurity, corev1.EventTypeWarning)
	})
}
