package nodeagent_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"

	"github.com/flint-dev/flint/internal/testenv"
	"github.com/flint-dev/flint/test/cluster/podnet"
)

func echoDeployment(ns string, replicas int32) *appsv1.Deployment {
	labels := map[string]string{"app": "echo"}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "echo", Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					Containers:                    []corev1.Container{echoContainer()},
					TerminationGracePeriodSeconds: ptr.To[int64](5),
				},
			},
		},
	}
}

// readyPods lists the pods of ns with label app=echo, and which are ready.
func readyPods(t *testing.T, ns string) (all, ready []corev1.Pod) {
	t.Helper()
	list, err := client.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: "app=echo"})
	if err != nil {
		t.Fatalf("list pods: %v", err)
	}
	for _, p := range list.Items {
		if isReady(&p) {
			ready = append(ready, p)
		}
	}
	return list.Items, ready
}

func TestDeploymentBecomesReadyAndServesOnPodIPs(t *testing.T) {
	t.Parallel()
	ns := namespace(t)
	ctx := context.Background()
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "echo", Namespace: ns},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "echo"},
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}},
		},
	}
	if _, err := client.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create service: %v", err)
	}
	created := time.Now()
	if _, err := client.AppsV1().Deployments(ns).Create(ctx, echoDeployment(ns, 2), metav1.CreateOptions{}); err != nil {
		t.Fatalf("create deployment: %v", err)
	}
	var pods []corev1.Pod
	testenv.Await(t, waitTimeout, "2 ready echo pods", func() (bool, string) {
		all, ready := readyPods(t, ns)
		pods = ready
		var states []string
		for _, p := range all {
			states = append(states, p.Name+": "+describe(&p))
		}
		return len(ready) == 2, strings.Join(states, "; ")
	})
	t.Logf("deployment created → 2 pods ready: %s", time.Since(created).Round(time.Millisecond))

	ips := map[string]bool{}
	for _, p := range pods {
		ips[p.Status.PodIP] = true
		if !strings.HasPrefix(p.Status.PodIP, podnet.PodIPPrefix) || p.Status.HostIP != podnet.HostIP || p.Spec.NodeName != nodeName {
			t.Errorf("pod %s: podIP %q hostIP %q node %q", p.Name, p.Status.PodIP, p.Status.HostIP, p.Spec.NodeName)
		}
		if len(p.Status.PodIPs) != 1 || p.Status.PodIPs[0].IP != p.Status.PodIP || p.Status.StartTime == nil {
			t.Errorf("pod %s: podIPs %v startTime %v", p.Name, p.Status.PodIPs, p.Status.StartTime)
		}
		for _, c := range []corev1.PodConditionType{corev1.PodScheduled, corev1.PodInitialized, corev1.ContainersReady, corev1.PodReady} {
			if condition(&p, c) != corev1.ConditionTrue {
				t.Errorf("pod %s: condition %s is %q", p.Name, c, condition(&p, c))
			}
		}
		s := containerStatus(&p, "echo")
		if p.Status.Phase != corev1.PodRunning || !s.Ready || s.Started == nil || !*s.Started || s.State.Running == nil || s.RestartCount != 0 {
			t.Errorf("pod %s: %s", p.Name, describe(&p))
		}
		code, body := httpGet(t, fmt.Sprintf("http://%s:8080/hello?x=1", p.Status.PodIP))
		if code != 200 || !strings.Contains(body, `"/hello"`) {
			t.Errorf("GET pod %s: %d %s", p.Name, code, body)
		}
		if logs := agent.Logs(ns, p.Name, "echo"); !strings.Contains(logs, "listening") || !strings.Contains(logs, p.Status.PodIP+":8080") {
			t.Errorf("logs of %s do not show it listening on its pod IP:\n%s", p.Name, logs)
		}
	}
	if len(ips) != 2 {
		t.Fatalf("pods share an IP: %v", ips)
	}

	// kube-controller-manager's EndpointSlice controller publishes them.
	testenv.Await(t, waitTimeout, "an EndpointSlice listing both pod IPs as ready", func() (bool, string) {
		slices, err := client.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=echo"})
		if err != nil {
			return false, err.Error()
		}
		got := readyEndpointIPs(slices.Items)
		return len(got) == 2 && ips[got[0]] && ips[got[1]], fmt.Sprint(got)
	})
}

func readyEndpointIPs(items []discoveryv1.EndpointSlice) []string {
	var ips []string
	for _, s := range items {
		for _, e := range s.Endpoints {
			if e.Conditions.Ready != nil && *e.Conditions.Ready {
				ips = append(ips, e.Addresses...)
			}
		}
	}
	slices.Sort(ips)
	return ips
}

func TestScaleDeploymentUpAndDown(t *testing.T) {
	t.Parallel()
	ns := namespace(t)
	ctx := context.Background()
	deployments := client.AppsV1().Deployments(ns)
	if _, err := deployments.Create(ctx, echoDeployment(ns, 1), metav1.CreateOptions{}); err != nil {
		t.Fatalf("create deployment: %v", err)
	}
	scale := func(n int32) {
		t.Helper()
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			s, err := deployments.GetScale(ctx, "echo", metav1.GetOptions{})
			if err != nil {
				return err
			}
			s.Spec.Replicas = n
			_, err = deployments.UpdateScale(ctx, "echo", s, metav1.UpdateOptions{})
			return err
		})
		if err != nil {
			t.Fatalf("scale to %d: %v", n, err)
		}
	}
	waitPods := func(n int) []corev1.Pod {
		t.Helper()
		var ready []corev1.Pod
		testenv.Await(t, waitTimeout, fmt.Sprintf("exactly %d pods, all ready", n), func() (bool, string) {
			all, r := readyPods(t, ns)
			ready = r
			return len(all) == n && len(r) == n, fmt.Sprintf("%d pods, %d ready", len(all), len(r))
		})
		return ready
	}
	waitPods(1)
	scale(3)
	before := waitPods(3)
	scale(1)
	after := waitPods(1)
	// The pods scaled away were stopped and their objects deleted by the
	// agent; nothing of theirs runs any more.
	for _, p := range before {
		if p.Name == after[0].Name {
			continue
		}
		key := ns + "/" + p.Name
		waitPodGone(t, ns, p.Name) // the pod list can drop it before the agent logs the deletion
		inOrder(t, events.about(key+":"), "sending SIGTERM to echo", "container echo exited with code 0", "pod deleted")
		if pid := pidOf(t, key, "echo"); processAlive(pid) {
			t.Errorf("echo of deleted pod %s (pid %d) still runs", p.Name, pid)
		}
	}
}
