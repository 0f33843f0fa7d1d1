package e2e

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flint-dev/flint/api/v1alpha1"
	"github.com/flint-dev/flint/internal/testenv"
)

func corev1EnvVar(name, value string) corev1.EnvVar { return corev1.EnvVar{Name: name, Value: value} }

// TestDeletingAnAgentCleansUp: deleting an Agent removes its Deployment,
// Service, pods and EndpointSlices (owner references and garbage
// collection), and gateways stop routing to it.
func TestDeletingAnAgentCleansUp(t *testing.T) {
	t.Parallel()
	ns := namespace(t)
	a := create(t, echoAgent(ns, "echo", func(a *v1alpha1.Agent) { a.Spec.Scaling.MinReplicas = ptr32(1) }))
	waitKnown(t, direct, ns, "echo")
	if status, body, _, _ := timedGet(t, invokeURL(direct, ns, "echo", "/")); status != http.StatusOK {
		t.Fatalf("before deletion: %d %s", status, body)
	}
	if err := env.Client.Delete(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	testenv.Await(t, waitTimeout, "everything of the agent gone", func() (bool, string) {
		deps, _ := kube.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{})
		svcs, _ := kube.CoreV1().Services(ns).List(ctx, metav1.ListOptions{})
		all, _ := pods(t, ns, "echo")
		slices, _ := kube.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{})
		left := len(deps.Items) + len(svcs.Items) + len(all) + len(slices.Items)
		return left == 0, fmt.Sprintf("deployments %d, services %d, pods %s, slices %d",
			len(deps.Items), len(svcs.Items), testenv.DescribePods(all), len(slices.Items))
	})
	for _, gw := range []*gatewayProc{direct, viaSvc} {
		testenv.Await(t, waitTimeout, gw.name+" to answer 404", func() (bool, string) {
			status, body, _, _ := timedGet(t, invokeURL(gw, ns, "echo", "/"))
			return status == http.StatusNotFound, fmt.Sprintf("%d %s", status, body)
		})
	}
}
