package kube

import (
	"context"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flint-dev/flint/api/v1alpha1"
	"github.com/flint-dev/flint/internal/controller"
	"github.com/flint-dev/flint/internal/platform"
	"github.com/flint-dev/flint/internal/testenv"
)

// TestFailureFollowsThePods: the kubelet (played by the test) reports an
// image pull failure; the manager writes it to the Agent's status and the
// platform reports it, so the gateway can answer at once.
func TestFailureFollowsThePods(t *testing.T) {
	t.Parallel()
	env, p := cluster(t)
	ns := env.Namespace(t)
	createAgent(t, env, ns, "broken", func(a *v1alpha1.Agent) { a.Spec.Scaling.MinReplicas = ptr[int32](1) })
	key := platform.AgentKey{Namespace: ns, Name: "broken"}
	ctx := context.Background()

	var pod corev1.Pod
	testenv.Eventually(t, settle, func() error {
		var pods corev1.PodList
		if err := env.Client.List(ctx, &pods, client.InNamespace(ns), client.MatchingLabels{v1alpha1.LabelAgent: "broken"}); err != nil {
			return err
		}
		if len(pods.Items) != 1 {
			return fmt.Errorf("%d pods", len(pods.Items))
		}
		pod = pods.Items[0]
		return nil
	})
	pod.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: controller.AgentContainerName, Image: "example.com/echo:1",
		State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ErrImagePull", Message: "manifest unknown"}}}}
	if err := env.Client.Status().Update(ctx, &pod); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, settle, func() error {
		reason, msg, failing := p.Failure(key)
		if !failing || reason != "ErrImagePull" || !strings.Contains(msg, "manifest unknown") {
			return fmt.Errorf("failure %q %q %v", reason, msg, failing)
		}
		return nil
	})
}
