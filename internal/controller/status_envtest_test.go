package controller

import (
	"context"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/flint-dev/flint/api/v1alpha1"
	"github.com/flint-dev/flint/internal/testenv"
)

// TestStatusSurfacesPodFailures plays the kubelet: it writes the status of
// the pod kube-controller-manager created for the agent, and the Agent's
// Ready condition follows with the kubelet's reason and message.
func TestStatusSurfacesPodFailures(t *testing.T) {
	t.Parallel()
	env := cluster(t)
	ns := env.Namespace(t)
	createAgent(t, env, ns, "flaky", func(a *v1alpha1.Agent) { a.Spec.Scaling.MinReplicas = ptr[int32](1) })

	var pod corev1.Pod
	testenv.Eventually(t, settle, func() error {
		var pods corev1.PodList
		if err := env.Client.List(context.Background(), &pods, client.InNamespace(ns), client.MatchingLabels{v1alpha1.LabelAgent: "flaky"}); err != nil {
			return err
		}
		if len(pods.Items) != 1 {
			return fmt.Errorf("%d pods, want the ReplicaSet's one", len(pods.Items))
		}
		pod = pods.Items[0]
		return nil
	})

	sidecarRunning := corev1.ContainerStatus{Name: SidecarContainerName, Image: "ghcr.io/flint-dev/flint:v1.2.3",
		State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Now()}}}
	agentWaiting := func(reason, msg string) corev1.ContainerStatus {
		return corev1.ContainerStatus{Name: AgentContainerName, Image: "example.com/echo:1",
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: msg}}}
	}

	setPodStatus(t, env, &pod, func(st *corev1.PodStatus) {
		st.Phase = corev1.PodPending
		st.InitContainerStatuses = []corev1.ContainerStatus{sidecarRunning}
		st.ContainerStatuses = []corev1.ContainerStatus{agentWaiting("ImagePullBackOff", `Back-off pulling image "example.com/echo:1"`)}
	})
	waitReady(t, env, ns, "flaky", "False", "ImagePullBackOff", "pod "+pod.Name, "Back-off pulling image")
	// kubectl describe shows when it started failing.
	testenv.Eventually(t, settle, func() error { return findEvent(env, ns, "flaky", "ImagePullBackOff", corev1.EventTypeWarning) })

	setPodStatus(t, env, &pod, func(st *corev1.PodStatus) {
		crash := agentWaiting("CrashLoopBackOff", "back-off 10s restarting failed container=agent")
		crash.RestartCount = 2
		crash.LastTerminationState.Terminated = &corev1.ContainerStateTerminated{ExitCode: 1, Reason: "Error", Message: "missing API key"}
		st.ContainerStatuses = []corev1.ContainerStatus{crash}
	})
	waitReady(t, env, ns, "flaky", "False", "CrashLoopBackOff", "last exit code 1, Error: missing API key")

	// The agent starts answering: the sidecar turns ready, so does the pod,
	// the ReplicaSet and Deployment count it, and the Agent is Ready.
	setPodStatus(t, env, &pod, func(st *corev1.PodStatus) {
		st.Phase = corev1.PodRunning
		st.ContainerStatuses = []corev1.ContainerStatus{{Name: AgentContainerName, Image: "example.com/echo:1", Ready: true,
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Now()}}}}
		sc := sidecarRunning
		sc.Ready = true
		st.InitContainerStatuses = []corev1.ContainerStatus{sc}
		now := metav1.Now()
		st.Conditions = []corev1.PodCondition{
			{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
			{Type: corev1.ContainersReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
		}
	})
	waitReady(t, env, ns, "flaky", "True", v1alpha1.ReasonReady, "1 of 1 replica(s) ready")
	testenv.Eventually(t, settle, func() error { return findEvent(env, ns, "flaky", v1alpha1.ReasonRecovered, corev1.EventTypeNormal) })
	var a v1alpha1.Agent
	if err := get(env, ns, "flaky", &a); err != nil {
		t.Fatal(err)
	}
	if a.Status.Replicas != 1 || a.Status.ReadyReplicas != 1 {
		t.Errorf("replicas %d ready %d, want 1 and 1", a.Status.Replicas, a.Status.ReadyReplicas)
	}
}

// TestUnchangedAgentIsNotReapplied drives a second reconciler, counting its
// writes, over an agent the manager already settled: once its memo knows
// the objects, reconciles (the pods of a scaling agent cause many) write
// nothing, until someone else edits the Deployment.
func TestUnchangedAgentIsNotReapplied(t *testing.T) {
	t.Parallel()
	env := cluster(t)
	ns := env.Namespace(t)
	createAgent(t, env, ns, "quiet", func(a *v1alpha1.Agent) { a.Spec.Scaling.MinReplicas = ptr[int32](1) })
	waitReplicas(t, env, ns, "quiet", 1)

	var applies int
	counting, err := client.NewWithWatch(env.Config, client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	c := interceptor.NewClient(counting, interceptor.Funcs{
		Apply: func(ctx context.Context, c client.WithWatch, obj runtime.ApplyConfiguration, opts ...client.ApplyOption) error {
			applies++
			return c.Apply(ctx, obj, opts...)
		},
	})
	rec, err := NewReconciler(c, testConfig(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	req := reconcile.Request{NamespacedName: types.NamespacedName{Namespace: ns, Name: "quiet"}}
	for i := range 5 {
		if _, err := rec.Reconcile(context.Background(), req); err != nil {
			t.Fatalf("reconcile %d: %v", i, err)
		}
	}
	if applies != 2 {
		t.Errorf("%d applies over 5 reconciles of an unchanged agent, want 2 (the Deployment and the Service, once)", applies)
	}

	setScale(t, env, &v1alpha1.Agent{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "quiet"}}, 2)
	if _, err := rec.Reconcile(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if applies != 3 {
		t.Errorf("%d applies after a scale change, want 3 (the Deployment again)", applies)
	}
}

// setPodStatus writes a pod's status as the kubelet would.
func setPodStatus(t *testing.T, env *testenv.Env, pod *corev1.Pod, mutate func(*corev1.PodStatus)) {
	t.Helper()
	if err := get(env, pod.Namespace, pod.Name, pod); err != nil {
		t.Fatal(err)
	}
	mutate(&pod.Status)
	if err := env.Client.Status().Update(context.Background(), pod); err != nil {
		t.Fatalf("write pod status: %v", err)
	}
}

// waitReady waits for the agent's Ready condition to have status and
// reason and a message containing each of msgs.
func waitReady(t *testing.T, env *testenv.Env, ns, name, status, reason string, msgs ...string) {
	t.Helper()
	testenv.Eventually(t, settle, func() error {
		var a v1alpha1.Agent
		if err := get(env, ns, name, &a); err != nil {
			return err
		}
		if err := expectCondition(&a, v1alpha1.ConditionReady, status, reason); err != nil {
			return err
		}
		for _, c := range a.Status.Conditions {
			if c.Type != v1alpha1.ConditionReady {
				continue
			}
			for _, m := range msgs {
				if !strings.Contains(c.Message, m) {
					return fmt.Errorf("Ready message %q lacks %q", c.Message, m)
				}
			}
		}
		return nil
	})
}

// findEvent looks for an events.k8s.io Event about the agent.
func findEvent(env *testenv.Env, ns, agent, reason, typ string) error {
	var events eventsv1.EventList
	if err := env.Client.List(context.Background(), &events, client.InNamespace(ns)); err != nil {
		return err
	}
	for _, e := range events.Items {
		if e.Regarding.Kind == "Agent" && e.Regarding.Name == agent && e.Reason == reason && e.Type == typ {
			return nil
		}
	}
	return fmt.Errorf("no %s event %s about agent %s among %d events", typ, reason, agent, len(events.Items))
}
