package nodeagent_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// proxiedEchoPod is what Flint's manager makes of an agent: `flint proxy`
// as a native sidecar in front of the echo agent, whose preStop waits for
// the sidecar's drain.
func proxiedEchoPod(ns, name string) *corev1.Pod {
	agentContainer := echoContainer()
	agentContainer.ReadinessProbe = nil // the sidecar's readiness is the pod's
	agentContainer.Lifecycle = &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{
		HTTPGet: &corev1.HTTPGetAction{Path: "/wait-for-drain", Port: intstr.FromInt32(8022)},
	}}
	pod := podWith(ns, name, agentContainer)
	pod.Spec.TerminationGracePeriodSeconds = ptr.To[int64](10)
	pod.Spec.InitContainers = []corev1.Container{{
		Name: "proxy", Image: flintImage, RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways),
		Args: []string{"proxy", "-serving-addr=:8012", "-admin-addr=:8022", "-upstream=127.0.0.1:8080",
			"-drain-delay=1s", "-drain-timeout=3s", "-termination-grace-period=10s"},
		Ports: []corev1.ContainerPort{{Name: "serving", ContainerPort: 8012}, {Name: "admin", ContainerPort: 8022}},
		ReadinessProbe: &corev1.Probe{
			ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/readyz", Port: intstr.FromString("admin")}},
			PeriodSeconds: 1, FailureThreshold: 1,
		},
	}}
	return pod
}

func TestFlintProxyAsNativeSidecarServesAndDrains(t *testing.T) {
	t.Parallel()
	ns := namespace(t)
	key := ns + "/proxied"
	created := time.Now()
	createPod(t, proxiedEchoPod(ns, "proxied"))
	pod := waitPod(t, ns, "proxied", "ready", isReady)
	t.Logf("pod with sidecar created → ready: %s", time.Since(created).Round(time.Millisecond))

	inOrder(t, events.about(key+":"), "started container proxy ", "started container echo ")
	proxy := containerStatus(pod, "proxy")
	if !proxy.Ready || proxy.Started == nil || !*proxy.Started || proxy.State.Running == nil {
		t.Errorf("sidecar status: %+v", proxy)
	}
	if pod.Status.Phase != corev1.PodRunning || len(pod.Status.InitContainerStatuses) != 1 {
		t.Errorf("pod status: %s", describe(pod))
	}
	ip := pod.Status.PodIP
	code, body := httpGet(t, fmt.Sprintf("http://%s:8012/through/the/proxy", ip))
	if code != 200 || !strings.Contains(body, `"/through/the/proxy"`) {
		t.Fatalf("GET through the sidecar: %d %s", code, body)
	}
	// The rewrite put both listeners and the upstream on the pod's IP.
	if logs := agent.Logs(ns, "proxied", "proxy"); !strings.Contains(logs, ip+":8012") || !strings.Contains(logs, ip+":8080") {
		t.Errorf("sidecar does not serve on %s:8012 or forward to %s:8080:\n%s", ip, ip, logs)
	}

	deleted := time.Now()
	deletePod(t, ns, "proxied", metav1.DeleteOptions{})
	waitPodGone(t, ns, "proxied")
	t.Logf("delete → pod object gone: %s", time.Since(deleted).Round(time.Millisecond))
	// The agent's preStop drains the sidecar, then the agent gets SIGTERM.
	// Flint's sidecar exits by itself once drained, so it may be gone
	// before the agent is; if not, it is signalled only after the agent
	// exited (KEP-753 order, checked deterministically below).
	lines := events.about(key + ":")
	inOrder(t, lines,
		"running preStop hook of echo", "preStop hook of echo done", "sending SIGTERM to echo",
		"container echo exited with code 0", "pod deleted")
	inOrder(t, lines, "preStop hook of echo done", "container proxy exited with code 0", "pod deleted")
	if i := indexOf(lines, "sending SIGTERM to proxy"); i >= 0 && i < indexOf(lines, "container echo exited") {
		t.Errorf("sidecar signalled before the agent exited:\n%s", strings.Join(lines, "\n"))
	}
	for _, l := range lines {
		if strings.Contains(l, "SIGKILL") {
			t.Errorf("a container had to be killed: %s", l)
		}
	}
	if pids := podProcesses("proxied"); len(pids) > 0 {
		t.Errorf("processes of the deleted pod still run: %v", pids)
	}
}

func TestInitContainersRunToCompletionInOrder(t *testing.T) {
	t.Parallel()
	ns := namespace(t)
	pod := podWith(ns, "init", shellContainer("main", "echo main; exec sleep 1000"))
	pod.Spec.InitContainers = []corev1.Container{
		shellContainer("first", "echo first"),
		shellContainer("second", "sleep 0.2; echo second"),
	}
	createPod(t, pod)
	pod = waitPod(t, ns, "init", "ready", isReady)
	inOrder(t, events.about(ns+"/init"),
		"started container first ", "container first exited with code 0",
		"started container second ", "container second exited with code 0",
		"started container main ")
	for _, name := range []string{"first", "second"} {
		s := containerStatus(pod, name)
		if s.State.Terminated == nil || s.State.Terminated.Reason != "Completed" || !s.Ready {
			t.Errorf("init container %s: %s ready=%v", name, stateString(s.State), s.Ready)
		}
	}
	if got := agent.Logs(ns, "init", "second"); got != "second\n" {
		t.Errorf("logs of init container second = %q", got)
	}
}

func TestPodWithSidecarCompletes(t *testing.T) {
	t.Parallel()
	ns := namespace(t)
	pod := podWith(ns, "job", shellContainer("work", "sleep 0.5; echo done"))
	pod.Spec.RestartPolicy = corev1.RestartPolicyNever
	side := shellContainer("helper", "exec sleep 1000")
	side.RestartPolicy = ptr.To(corev1.ContainerRestartPolicyAlways)
	pod.Spec.InitContainers = []corev1.Container{side}
	createPod(t, pod)
	pod = waitPod(t, ns, "job", "to succeed", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodSucceeded })
	if s := containerStatus(pod, "work"); s.State.Terminated == nil || s.State.Terminated.ExitCode != 0 {
		t.Errorf("work: %s", stateString(s.State))
	}
	if s := containerStatus(pod, "helper"); s.State.Terminated == nil {
		t.Errorf("sidecar not stopped once the pod completed: %s", stateString(s.State))
	}
	inOrder(t, events.about(ns+"/job:"), "container work exited with code 0", "sending SIGTERM to helper")
}

func TestDeletionStopsSidecarsAfterMainContainersInReverseOrder(t *testing.T) {
	t.Parallel()
	ns := namespace(t)
	// The main container takes a moment to exit on SIGTERM; the sidecars
	// exit at once, so any ordering comes from the agent.
	pod := podWith(ns, "ordered", shellContainer("main", `trap 'sleep 0.3; exit 0' TERM; sleep 1000 & wait`))
	for _, name := range []string{"first", "second"} {
		side := shellContainer(name, "exec sleep 1000")
		side.RestartPolicy = ptr.To(corev1.ContainerRestartPolicyAlways)
		pod.Spec.InitContainers = append(pod.Spec.InitContainers, side)
	}
	createPod(t, pod)
	waitPod(t, ns, "ordered", "ready", isReady)
	inOrder(t, events.about(ns+"/ordered:"), "started container first ", "started container second ", "started container main ")
	deletePod(t, ns, "ordered", metav1.DeleteOptions{})
	waitPodGone(t, ns, "ordered")
	inOrder(t, events.about(ns+"/ordered:"),
		"sending SIGTERM to main", "container main exited with code 0",
		"sending SIGTERM to second", "container second exited",
		"sending SIGTERM to first", "container first exited", "pod deleted")
}
