package controller

import (
	"context"
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flint-dev/flint/api/v1alpha1"
	"github.com/flint-dev/flint/internal/testenv"
)

// TestBrokenImageStaysReportedAtZero: an agent whose replica cannot pull
// its image, scaled back to zero, is not reported Ready (the last attempt's
// reason stays), no Recovered event claims otherwise, and each scale is an
// Event.
func TestBrokenImageStaysReportedAtZero(t *testing.T) {
	t.Parallel()
	env := cluster(t)
	ns := env.Namespace(t)
	a := createAgent(t, env, ns, "broken", nil)
	waitReady(t, env, ns, "broken", "True", v1alpha1.ReasonScaledToZero)

	setScale(t, env, a, 1)
	var pod corev1.Pod
	testenv.Eventually(t, settle, func() error {
		var pods corev1.PodList
		if err := env.Client.List(context.Background(), &pods, client.InNamespace(ns), client.MatchingLabels{v1alpha1.LabelAgent: "broken"}); err != nil {
			return err
		}
		if len(pods.Items) != 1 {
			return fmt.Errorf("%d pods, want 1", len(pods.Items))
		}
		pod = pods.Items[0]
		return nil
	})
	setPodStatus(t, env, &pod, func(st *corev1.PodStatus) {
		st.Phase = corev1.PodPending
		st.ContainerStatuses = []corev1.ContainerStatus{{Name: AgentContainerName, Image: "example.com/echo:1",
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff", Message: "Back-off pulling image"}}}}
	})
	waitReady(t, env, ns, "broken", "False", "ImagePullBackOff")

	setScale(t, env, a, 0)
	waitReplicas(t, env, ns, "broken", 0)
	waitReady(t, env, ns, "broken", "False", "ImagePullBackOff", "scaled to zero; its last replica failed", "Back-off pulling image")
	testenv.Eventually(t, settle, func() error {
		var pods corev1.PodList
		if err := env.Client.List(context.Background(), &pods, client.InNamespace(ns), client.MatchingLabels{v1alpha1.LabelAgent: "broken"}); err != nil {
			return err
		}
		if len(pods.Items) != 0 {
			return fmt.Errorf("%d pods left", len(pods.Items))
		}
		return nil
	})
	waitReady(t, env, ns, "broken", "False", "ImagePullBackOff", "scaled to zero; its last replica failed")
	if err := findEvent(env, ns, "broken", v1alpha1.ReasonRecovered, corev1.EventTypeNormal); err == nil {
		t.Error("a Recovered event for an agent that never recovered")
	}
	testenv.Eventually(t, settle, func() error { return findEvent(env, ns, "broken", v1alpha1.ReasonScaled, corev1.EventTypeNormal) })

	// A new pod template is a fresh start.
	testenv.UpdateAgent(t, env.Client, ns, "broken", func(a *v1alpha1.Agent) { a.Spec.Container.Image = "example.com/echo:2" })
	waitReady(t, env, ns, "broken", "True", v1alpha1.ReasonScaledToZero)
}
