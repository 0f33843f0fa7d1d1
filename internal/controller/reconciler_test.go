package controller

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flint-dev/flint/api/v1alpha1"
	"github.com/flint-dev/flint/internal/testenv"
)

const settle = 30 * time.Second

func TestAgentBecomesDeploymentAndService(t *testing.T) {
	t.Parallel()
	env := cluster(t)
	ns := env.Namespace(t)
	agent := createAgent(t, env, ns, "echo", func(a *v1alpha1.Agent) {
		a.Spec.Container.Command = []string{"echo-agent"}
		a.Spec.Container.Args = []string{"--verbose"}
		a.Spec.Container.Env = []corev1.EnvVar{{Name: "GREETING", Value: "hi"}}
		a.Spec.Container.Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")}
		a.Spec.Container.ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{
			HTTPGet: &corev1.HTTPGetAction{Path: "/ready", Port: intstr.FromInt32(8080)}}}
		a.Spec.Scaling.MinReplicas = ptr[int32](1)
	})

	var d appsv1.Deployment
	testenv.Eventually(t, settle, func() error { return get(env, ns, "echo", &d) })
	checkOwned(t, &d.ObjectMeta, agent)
	if *d.Spec.Replicas != 1 {
		t.Errorf("replicas %d, want minReplicas 1", *d.Spec.Replicas)
	}
	if got := d.Spec.Selector.MatchLabels; len(got) != 1 || got[v1alpha1.LabelAgent] != "echo" {
		t.Errorf("selector %v", got)
	}
	if d.Spec.Strategy.RollingUpdate == nil || d.Spec.Strategy.RollingUpdate.MaxUnavailable.IntValue() != 0 {
		t.Errorf("rolling update must keep capacity: %+v", d.Spec.Strategy)
	}
	pod := d.Spec.Template
	if pod.Labels[v1alpha1.LabelManagedBy] != v1alpha1.ManagedByValue || pod.Labels[v1alpha1.LabelAgent] != "echo" {
		t.Errorf("pod labels %v", pod.Labels)
	}
	if g := pod.Spec.TerminationGracePeriodSeconds; g == nil || *g != 310 {
		t.Errorf("terminationGracePeriodSeconds %v, want 310 (5s delay + 300s request timeout + 5s margin)", g)
	}
	if pod.Spec.EnableServiceLinks == nil || *pod.Spec.EnableServiceLinks ||
		pod.Spec.AutomountServiceAccountToken == nil || *pod.Spec.AutomountServiceAccountToken {
		t.Error("service links and the service account token must be off")
	}

	if len(pod.Spec.InitContainers) != 1 || len(pod.Spec.Containers) != 1 {
		t.Fatalf("%d init containers and %d containers, want the sidecar and the agent", len(pod.Spec.InitContainers), len(pod.Spec.Containers))
	}
	sc := pod.Spec.InitContainers[0]
	if sc.Name != SidecarContainerName || sc.Image != "ghcr.io/flint-dev/flint:v1.2.3" {
		t.Errorf("sidecar %s image %s", sc.Name, sc.Image)
	}
	if sc.RestartPolicy == nil || *sc.RestartPolicy != corev1.ContainerRestartPolicyAlways {
		t.Error("the sidecar must be a native sidecar (restartPolicy Always)")
	}
	for _, arg := range []string{"proxy", "-serving-addr=:8012", "-admin-addr=:8022", "-upstream=127.0.0.1:8080",
		"-concurrency=10", "-probe-path=/ready", "-drain-delay=5s", "-drain-timeout=5m0s", "-termination-grace-period=5m10s"} {
		if !slices.Contains(sc.Args, arg) {
			t.Errorf("sidecar args %q lack %s", sc.Args, arg)
		}
	}
	if p := pod.Spec.Containers[0].ReadinessProbe; p == nil || p.HTTPGet == nil || !strings.HasPrefix(p.HTTPGet.Path, "/readyz?") ||
		p.HTTPGet.Port.IntVal != v1alpha1.AdminPort || p.PeriodSeconds != 1 {
		t.Errorf("readiness probe (the agent container's, of the sidecar) %+v", p)
	}
	if ports := containerPorts(sc); ports != "http=8012,admin=8022" {
		t.Errorf("sidecar ports %s", ports)
	}

	ag := pod.Spec.Containers[0]
	if ag.Name != AgentContainerName || ag.Image != "example.com/echo:1" ||
		!slices.Equal(ag.Command, []string{"echo-agent"}) || !slices.Equal(ag.Args, []string{"--verbose"}) {
		t.Errorf("agent container %+v", ag)
	}
	if !slices.Contains(ag.Env, corev1.EnvVar{Name: "PORT", Value: "8080"}) || !slices.Contains(ag.Env, corev1.EnvVar{Name: "GREETING", Value: "hi"}) {
		t.Errorf("agent env %v", ag.Env)
	}
	if ag.Resources.Requests.Cpu().MilliValue() != 100 {
		t.Errorf("agent resources %v", ag.Resources)
	}
	if l := ag.Lifecycle; l == nil || l.PreStop == nil || l.PreStop.HTTPGet == nil ||
		l.PreStop.HTTPGet.Path != "/wait-for-drain" || l.PreStop.HTTPGet.Port.IntValue() != v1alpha1.AdminPort {
		t.Errorf("agent preStop %+v: it must wait for the sidecar's drain", l)
	}

	var svc corev1.Service
	testenv.Eventually(t, settle, func() error { return get(env, ns, "echo", &svc) })
	checkOwned(t, &svc.ObjectMeta, agent)
	if svc.Spec.Selector[v1alpha1.LabelAgent] != "echo" || len(svc.Spec.Selector) != 1 {
		t.Errorf("service selector %v", svc.Spec.Selector)
	}
	var ports []string
	for _, p := range svc.Spec.Ports {
		ports = append(ports, fmt.Sprintf("%s=%d->%s", p.Name, p.Port, p.TargetPort.String()))
	}
	if strings.Join(ports, ",") != "http=8012->8012,admin=8022->8022" {
		t.Errorf("service ports %v", ports)
	}

	testenv.Eventually(t, settle, func() error {
		var a v1alpha1.Agent
		if err := get(env, ns, "echo", &a); err != nil {
			return err
		}
		st := a.Status
		if st.ObservedGeneration != a.Generation || st.Selector != v1alpha1.LabelAgent+"=echo" || st.DesiredReplicas != 1 ||
			st.URL != "https://agents.example.com/v1/agents/"+ns+"/echo/" {
			return fmt.Errorf("status %+v", st)
		}
		return expectCondition(&a, v1alpha1.ConditionReady, "False", v1alpha1.ReasonProgressing)
	})
}

func TestAgentSpecChangeUpdatesDeployment(t *testing.T) {
	t.Parallel()
	env := cluster(t)
	ns := env.Namespace(t)
	createAgent(t, env, ns, "change", nil)
	var d appsv1.Deployment
	testenv.Eventually(t, settle, func() error { return get(env, ns, "change", &d) })

	testenv.UpdateAgent(t, env.Client, ns, "change", func(a *v1alpha1.Agent) {
		a.Spec.Container.Image = "example.com/echo:2"
		a.Spec.Container.Env = []corev1.EnvVar{{Name: "MODE", Value: "fast"}}
		a.Spec.Concurrency = 4
		a.Spec.Scaling.Target = ptr[int32](3)
	})
	testenv.Eventually(t, settle, func() error {
		if err := get(env, ns, "change", &d); err != nil {
			return err
		}
		ag, sc := d.Spec.Template.Spec.Containers[0], d.Spec.Template.Spec.InitContainers[0]
		if ag.Image != "example.com/echo:2" || !slices.Contains(ag.Env, corev1.EnvVar{Name: "MODE", Value: "fast"}) ||
			!slices.Contains(sc.Args, "-concurrency=4") {
			return fmt.Errorf("deployment not updated: image %s env %v sidecar %v", ag.Image, ag.Env, sc.Args)
		}
		return nil
	})
	testenv.Eventually(t, settle, func() error {
		var got v1alpha1.Agent
		if err := get(env, ns, "change", &got); err != nil {
			return err
		}
		if got.Status.ObservedGeneration != got.Generation {
			return fmt.Errorf("observedGeneration %d, generation %d", got.Status.ObservedGeneration, got.Generation)
		}
		return nil
	})
}

func TestScaleSubresourceDrivesDeployment(t *testing.T) {
	t.Parallel()
	env := cluster(t)
	ns := env.Namespace(t)
	createAgent(t, env, ns, "scaled", func(a *v1alpha1.Agent) { a.Spec.Scaling.MaxReplicas = ptr[int32](3) })
	ctx := context.Background()

	// Nothing asked for yet and minReplicas 0: scaled to zero, and Ready,
	// since the next request wakes it.
	waitReplicas(t, env, ns, "scaled", 0)
	testenv.Eventually(t, settle, func() error {
		var a v1alpha1.Agent
		if err := get(env, ns, "scaled", &a); err != nil {
			return err
		}
		return firstErr(expectCondition(&a, v1alpha1.ConditionScaledToZero, "True", v1alpha1.ReasonIdle),
			expectCondition(&a, v1alpha1.ConditionReady, "True", v1alpha1.ReasonScaledToZero))
	})

	agent := &v1alpha1.Agent{}
	agent.Namespace, agent.Name = ns, "scaled"
	// The scale subresource can be read (by an HPA, KEDA, kubectl) before
	// the autoscaler ever acts, with status.selector as its selector.
	testenv.Eventually(t, settle, func() error {
		scale := &autoscalingv1.Scale{}
		if err := env.Client.SubResource("scale").Get(ctx, agent, scale); err != nil {
			return fmt.Errorf("get scale: %w", err)
		}
		if scale.Spec.Replicas != 0 || scale.Status.Selector != v1alpha1.LabelAgent+"=scaled" {
			return fmt.Errorf("scale %+v: want 0 replicas and status.selector as its selector", scale)
		}
		return nil
	})
	setScale(t, env, agent, 2)
	waitReplicas(t, env, ns, "scaled", 2)
	testenv.Eventually(t, settle, func() error {
		var a v1alpha1.Agent
		if err := get(env, ns, "scaled", &a); err != nil {
			return err
		}
		if a.Status.DesiredReplicas != 2 {
			return fmt.Errorf("desiredReplicas %d", a.Status.DesiredReplicas)
		}
		return expectCondition(&a, v1alpha1.ConditionScaledToZero, "False", v1alpha1.ReasonActive)
	})

	// Beyond maxReplicas: the Deployment gets the ceiling at once.
	setScale(t, env, agent, 10)
	waitReplicas(t, env, ns, "scaled", 3)
}

func TestManualDeploymentEditIsReverted(t *testing.T) {
	t.Parallel()
	env := cluster(t)
	ns := env.Namespace(t)
	createAgent(t, env, ns, "owned", func(a *v1alpha1.Agent) { a.Spec.Scaling.MinReplicas = ptr[int32](1) })
	waitReplicas(t, env, ns, "owned", 1)
	d := &appsv1.Deployment{}
	d.Namespace, d.Name = ns, "owned"
	patch := client.RawPatch(types.MergePatchType, []byte(`{"spec":{"replicas":5,"template":{"spec":{"containers":[{"name":"agent","image":"evil:1"}]}}}}`))
	if err := env.Client.Patch(context.Background(), d, patch); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, settle, func() error {
		if err := get(env, ns, "owned", d); err != nil {
			return err
		}
		if *d.Spec.Replicas != 1 || d.Spec.Template.Spec.Containers[0].Image != "example.com/echo:1" {
			return fmt.Errorf("edit not reverted: replicas %d, image %s", *d.Spec.Replicas, d.Spec.Template.Spec.Containers[0].Image)
		}
		return nil
	})
}

func TestDeletingAgentCollectsItsObjects(t *testing.T) {
	t.Parallel()
	env := cluster(t)
	ns := env.Namespace(t)
	a := createAgent(t, env, ns, "doomed", nil)
	testenv.Eventually(t, settle, func() error {
		return firstErr(get(env, ns, "doomed", &appsv1.Deployment{}), get(env, ns, "doomed", &corev1.Service{}))
	})
	if err := env.Client.Delete(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	// The garbage collector needs a few seconds to discover a new CRD's
	// resources before it acts on owner references.
	testenv.Eventually(t, 90*time.Second, func() error {
		return firstErr(gone(env, ns, "doomed", &appsv1.Deployment{}), gone(env, ns, "doomed", &corev1.Service{}))
	})
}

// checkOwned checks the labels the NetworkPolicy and caches select on and
// the controller owner reference that garbage collection follows.
func checkOwned(t *testing.T, m *metav1.ObjectMeta, a *v1alpha1.Agent) {
	t.Helper()
	if m.Labels[v1alpha1.LabelManagedBy] != v1alpha1.ManagedByValue || m.Labels[v1alpha1.LabelAgent] != a.Name {
		t.Errorf("%s labels %v", m.Name, m.Labels)
	}
	refs := m.OwnerReferences
	if len(refs) != 1 || refs[0].Kind != "Agent" || refs[0].APIVersion != v1alpha1.GroupVersion.String() ||
		refs[0].Name != a.Name || refs[0].UID != a.UID || refs[0].Controller == nil || !*refs[0].Controller {
		t.Errorf("%s owner references %+v, want the Agent as controller", m.Name, refs)
	}
}

func containerPorts(c corev1.Container) string {
	var out []string
	for _, p := range c.Ports {
		out = append(out, fmt.Sprintf("%s=%d", p.Name, p.ContainerPort))
	}
	return strings.Join(out, ",")
}

func expectCondition(a *v1alpha1.Agent, typ, status, reason string) error {
	c := meta.FindStatusCondition(a.Status.Conditions, typ)
	if c == nil || string(c.Status) != status || c.Reason != reason {
		return fmt.Errorf("condition %s = %+v, want %s/%s", typ, c, status, reason)
	}
	return nil
}

// setScale writes the agent's scale as the autoscaler and kubectl scale do.
func setScale(t *testing.T, env *testenv.Env, a *v1alpha1.Agent, n int32) {
	t.Helper()
	scale := &autoscalingv1.Scale{Spec: autoscalingv1.ScaleSpec{Replicas: n}}
	scale.Namespace, scale.Name = a.Namespace, a.Name
	if err := env.Client.SubResource("scale").Update(context.Background(), a, client.WithSubResourceBody(scale)); err != nil {
		t.Fatalf("scale %s to %d: %v", a.Name, n, err)
	}
}

func waitReplicas(t *testing.T, env *testenv.Env, ns, name string, n int32) {
	t.Helper()
	testenv.Eventually(t, settle, func() error {
		var d appsv1.Deployment
		if err := get(env, ns, name, &d); err != nil {
			return err
		}
		if d.Spec.Replicas == nil || *d.Spec.Replicas != n {
			return fmt.Errorf("deployment replicas %v, want %d", d.Spec.Replicas, n)
		}
		return nil
	})
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
