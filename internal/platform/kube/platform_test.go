package kube

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flint-dev/flint/api/v1alpha1"
	"github.com/flint-dev/flint/internal/autoscaler"
	"github.com/flint-dev/flint/internal/platform"
	"github.com/flint-dev/flint/internal/testenv"
)

const settle = 30 * time.Second

func TestAgentsComeDefaultedFromTheCluster(t *testing.T) {
	t.Parallel()
	env, p := cluster(t)
	ns := env.Namespace(t)
	a := createAgent(t, env, ns, "echo", func(a *v1alpha1.Agent) { a.Spec.Concurrency = 10 })
	key := platform.AgentKey{Namespace: ns, Name: "echo"}

	testenv.Eventually(t, settle, func() error {
		got, ok := p.Agent(key)
		if !ok {
			return errors.New("agent not seen")
		}
		if got.Spec.Scaling.Target == nil || *got.Spec.Scaling.Target != 7 || got.Spec.Scaling.StableWindow == nil {
			return fmt.Errorf("agent not defaulted: %+v", got.Spec.Scaling)
		}
		return nil
	})
	if !slices.ContainsFunc(p.Agents(), func(a *v1alpha1.Agent) bool { return platform.KeyOf(a) == key }) {
		t.Error("Agents() does not list the agent")
	}

	_, changed := p.ReadyEndpoints(key)
	if err := env.Client.Delete(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	// A request held for the agent must learn at once that it is gone.
	waitClosed(t, changed, "agent deleted")
	if _, ok := p.Agent(key); ok {
		t.Error("deleted agent still known")
	}
}

func TestSetScaleWritesTheAgentsScale(t *testing.T) {
	t.Parallel()
	env, p := cluster(t)
	ns := env.Namespace(t)
	createAgent(t, env, ns, "scaled", nil)
	key := platform.AgentKey{Namespace: ns, Name: "scaled"}
	testenv.Eventually(t, settle, func() error {
		if _, ok := p.Agent(key); !ok {
			return errors.New("agent not seen")
		}
		return nil
	})

	if err := p.SetScale(context.Background(), key, 3); err != nil {
		t.Fatal(err)
	}
	// Known at once, before the informer delivers the change.
	if n := p.Replicas(key); n != 3 {
		t.Errorf("Replicas right after SetScale = %d, want 3", n)
	}
	var a v1alpha1.Agent
	if err := get(env, ns, "scaled", &a); err != nil {
		t.Fatal(err)
	}
	if r := a.Spec.Scaling.Replicas; r == nil || *r != 3 {
		t.Errorf("spec.scaling.replicas = %v, want 3", r)
	}
	// The manager copies the scale to the Deployment.
	testenv.Eventually(t, settle, func() error {
		var d appsv1.Deployment
		if err := get(env, ns, "scaled", &d); err != nil {
			return err
		}
		if *d.Spec.Replicas != 3 {
			return fmt.Errorf("deployment replicas %d", *d.Spec.Replicas)
		}
		return nil
	})

	err := p.SetScale(context.Background(), platform.AgentKey{Namespace: ns, Name: "missing"}, 1)
	if !apierrors.IsNotFound(err) {
		t.Errorf("scaling a missing agent: %v, want a NotFound error", err)
	}
	if err := p.SetScale(context.Background(), key, -1); err == nil {
		t.Error("negative scale accepted")
	}
}

// TestAutoscalerPokeScalesTheDeployment wires the autoscaler to the
// platform as `flint manager` does: a poke for an agent at zero ends with
// its Deployment asking for a replica.
func TestAutoscalerPokeScalesTheDeployment(t *testing.T) {
	t.Parallel()
	env, p := cluster(t)
	ns := env.Namespace(t)
	createAgent(t, env, ns, "sleepy", nil)
	key := platform.AgentKey{Namespace: ns, Name: "sleepy"}
	testenv.Eventually(t, settle, func() error {
		if _, ok := p.Agent(key); !ok {
			return errors.New("agent not seen")
		}
		return nil
	})
	loop, err := autoscaler.NewLoop(autoscaler.LoopConfig{}, p, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- loop.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()

	loop.Poke(key)
	testenv.Eventually(t, settle, func() error {
		var d appsv1.Deployment
		if err := get(env, ns, "sleepy", &d); err != nil {
			return err
		}
		if *d.Spec.Replicas != 1 {
			return fmt.Errorf("deployment replicas %d, want 1", *d.Spec.Replicas)
		}
		return nil
	})
}

// TestReadyEndpointsFromPods runs the whole chain with kube-controller-
// manager's EndpointSlice controller: a pod of the agent's Service turns
// ready, then terminates.
func TestReadyEndpointsFromPods(t *testing.T) {
	t.Parallel()
	env, p := cluster(t)
	ns := env.Namespace(t)
	ensureNode(t, env, "flint-test-node")
	createAgent(t, env, ns, "web", nil)
	key := platform.AgentKey{Namespace: ns, Name: "web"}
	testenv.Eventually(t, settle, func() error { return get(env, ns, "web", &corev1.Service{}) })

	_, changed := p.ReadyEndpoints(key)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web-1",
			Labels: map[string]string{v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue, v1alpha1.LabelAgent: "web"}},
		Spec: corev1.PodSpec{NodeName: "flint-test-node", Containers: []corev1.Container{{Name: "agent", Image: "example.com/echo:1"}}},
	}
	ctx := context.Background()
	if err := env.Client.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Client.Delete(ctx, pod, client.GracePeriodSeconds(0)) })
	pod.Status = corev1.PodStatus{
		Phase: corev1.PodRunning, PodIP: "10.244.1.7", PodIPs: []corev1.PodIP{{IP: "10.244.1.7"}},
		Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Now()}},
	}
	if err := env.Client.Status().Update(ctx, pod); err != nil {
		t.Fatal(err)
	}
	for {
		waitClosed(t, changed, "pod ready")
		var eps []platform.Endpoint
		eps, changed = p.ReadyEndpoints(key)
		if len(eps) > 0 {
			if want := []string{"web-1@10.244.1.7:8012/10.244.1.7:8022"}; !slices.Equal(names(eps), want) {
				t.Fatalf("ready %v, want %v", names(eps), want)
			}
			break
		}
	}

	// Deleting a pod on a node leaves it terminating until its kubelet
	// confirms; meanwhile it drains: out of the ready set, in the draining one.
	if err := env.Client.Delete(ctx, pod); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, settle, func() error {
		ready, _ := p.ReadyEndpoints(key)
		draining, _ := p.DrainingEndpoints(key)
		if len(ready) != 0 || len(draining) != 1 || draining[0].Replica != "web-1" {
			return fmt.Errorf("ready %v, draining %v", names(ready), names(draining))
		}
		return nil
	})
}
