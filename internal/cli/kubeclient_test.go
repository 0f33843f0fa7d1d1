package cli

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/flint-dev/flint/api/v1alpha1"
	"github.com/flint-dev/flint/internal/gateway"
	"github.com/flint-dev/flint/internal/testenv"
)

// TestAgentsAndDescribeFromCluster reads Agents from a real API server:
// the status the manager writes, the ready endpoints of the agent's
// EndpointSlices and its Events.
func TestAgentsAndDescribeFromCluster(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	ns := env.Namespace(t)
	ctx := context.Background()

	a := &v1alpha1.Agent{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "echo"}}
	a.Spec.Container.Image = "ghcr.io/example/echo:1.0"
	a.Spec.Container.Port = 8080
	a.Spec.Concurrency = 4
	if err := env.Client.Create(ctx, a); err != nil {
		t.Fatal(err)
	}
	last := metav1.NewTime(time.Now().Add(-90 * time.Second))
	a.Status = v1alpha1.AgentStatus{Replicas: 2, ReadyReplicas: 1, DesiredReplicas: 2, URL: "http://flint.example/v1/agents/" + ns + "/echo/",
		LastInvocationAt: &last, Conditions: []metav1.Condition{{
			Type: v1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: "CrashLoopBackOff",
			Message: "the agent container keeps exiting", ObservedGeneration: a.Generation, LastTransitionTime: metav1.Now(),
		}}}
	if err := env.Client.Status().Update(ctx, a); err != nil {
		t.Fatal(err)
	}
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "echo-x1", Labels: map[string]string{
			discoveryv1.LabelServiceName: "echo", v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue}},
		AddressType: discoveryv1.AddressTypeIPv4,
		// The ports as the manager's Service names them: readers find
		// them by name, not by number.
		Ports: []discoveryv1.EndpointPort{
			{Name: ptr.To(v1alpha1.ServingPortName), Port: ptr.To[int32](v1alpha1.ServingPort)},
			{Name: ptr.To(v1alpha1.AdminPortName), Port: ptr.To[int32](v1alpha1.AdminPort)},
		},
		Endpoints: []discoveryv1.Endpoint{
			{Addresses: []string{"10.0.0.5"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)},
				TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: ns, Name: "echo-7d9f-abc"}},
			{Addresses: []string{"10.0.0.6"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(false)}},
			// Terminating yet still ready (a draining pod whose readiness
			// the kubelet has not yet failed): no new work goes there.
			{Addresses: []string{"10.0.0.7"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true), Terminating: ptr.To(true)},
				TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: ns, Name: "echo-7d9f-old"}},
		},
	}
	if err := env.Client.Create(ctx, slice); err != nil {
		t.Fatal(err)
	}
	ev := &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Namespace: ns, Name: "echo.1"},
		InvolvedObject: corev1.ObjectReference{Kind: "Agent", APIVersion: v1alpha1.GroupVersion.String(), Namespace: ns, Name: "echo"},
		Type:           corev1.EventTypeWarning, Reason: "CrashLoopBackOff", Message: "back-off restarting the agent container",
		Count: 3, LastTimestamp: metav1.Now(),
	}
	if err := env.Client.Create(ctx, ev); err != nil {
		t.Fatal(err)
	}

	code, out, errOut := run("agents", "-kubeconfig", env.Kubeconfig, "-n", ns)
	if code != 0 {
		t.Fatalf("agents: %d %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.Contains(lines[1], ns+"/echo") || !strings.Contains(lines[1], "1 (CrashLoopBackOff)") ||
		!strings.Contains(lines[1], "1m ago") {
		t.Fatalf("agents:\n%s", out)
	}

	code, out, errOut = run("describe", ns+"/echo", "-kubeconfig", env.Kubeconfig)
	if code != 0 {
		t.Fatalf("describe: %d %s", code, errOut)
	}
	for _, want := range []string{"image ghcr.io/example/echo:1.0, port 8080", "2 asked, 1 ready, 2 desired",
		"Failing:", "the agent container keeps exiting", "echo-7d9f-abc", "10.0.0.5:8012", "10.0.0.5:8022",
		"Events", "Warning", "back-off restarting the agent container", "(x3)"} {
		if !strings.Contains(out, want) {
			t.Errorf("describe lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "10.0.0.6") || strings.Contains(out, "10.0.0.7") {
		t.Errorf("describe lists a replica that is not ready or is terminating:\n%s", out)
	}

	code, out, _ = run("describe", "echo", "-n", ns, "-o", "json", "-kube", "-kubeconfig", env.Kubeconfig)
	var d gateway.AgentDetail
	if code != 0 || json.Unmarshal([]byte(out), &d) != nil || d.Failure == nil || len(d.Endpoints) != 1 || len(d.Events) != 1 {
		t.Fatalf("describe -o json: %d %s", code, out)
	}
	if code, _, errOut = run("describe", ns+"/nope", "-kubeconfig", env.Kubeconfig); code != 1 || !strings.Contains(errOut, "no agent") {
		t.Fatalf("describe nope: %d %s", code, errOut)
	}
}
