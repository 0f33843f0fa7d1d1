package nodeagent_test

import (
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	"github.com/flint-dev/flint/internal/testenv"
)

func waitingReason(p *corev1.Pod, c string) string {
	if w := containerStatus(p, c).State.Waiting; w != nil {
		return w.Reason
	}
	return ""
}

func TestUnknownImageReportsImagePullBackOff(t *testing.T) {
	t.Parallel()
	ns := namespace(t)
	const image = "registry.example/missing:1"
	createPod(t, podWith(ns, "pull", corev1.Container{Name: "app", Image: image}))
	waitPod(t, ns, "pull", "to report ErrImagePull", func(p *corev1.Pod) bool { return waitingReason(p, "app") == "ErrImagePull" })
	pod := waitPod(t, ns, "pull", "to report ImagePullBackOff", func(p *corev1.Pod) bool { return waitingReason(p, "app") == "ImagePullBackOff" })
	if msg := containerStatus(pod, "app").State.Waiting.Message; !strings.Contains(msg, image) {
		t.Errorf("waiting message does not name the image: %q", msg)
	}
	if pod.Status.Phase != corev1.PodPending || isReady(pod) || pod.Status.PodIP == "" {
		t.Errorf("pod status: %s", describe(pod))
	}
	// Once the image "exists", the next pull succeeds.
	agent.SetImage(image, "/bin/sh")
	t.Cleanup(func() { agent.SetImage(image, "") })
	createPod(t, podWith(ns, "pulled", corev1.Container{Name: "app", Image: image, Args: []string{"-c", "exec sleep 1000"}}))
	waitPod(t, ns, "pulled", "ready", isReady)
}

func TestCrashingContainerReportsCrashLoopBackOff(t *testing.T) {
	t.Parallel()
	ns := namespace(t)
	createPod(t, podWith(ns, "crash", shellContainer("app", "echo boom; exit 3")))
	pod := waitPod(t, ns, "crash", "in CrashLoopBackOff after 2 restarts", func(p *corev1.Pod) bool {
		return waitingReason(p, "app") == "CrashLoopBackOff" && containerStatus(p, "app").RestartCount >= 2
	})
	s := containerStatus(pod, "app")
	if last := s.LastTerminationState.Terminated; last == nil || last.ExitCode != 3 || last.Reason != "Error" {
		t.Errorf("last termination state: %+v", s.LastTerminationState)
	}
	if !strings.Contains(s.State.Waiting.Message, "back-off") || pod.Status.Phase != corev1.PodRunning || isReady(pod) {
		t.Errorf("pod status: %s", describe(pod))
	}
	restarts := s.RestartCount
	waitPod(t, ns, "crash", "to restart again", func(p *corev1.Pod) bool { return containerStatus(p, "app").RestartCount > restarts })
	if n := strings.Count(agent.Logs(ns, "crash", "app"), "boom\n"); n < 3 {
		t.Errorf("logs hold %d runs, want all of them:\n%s", n, agent.Logs(ns, "crash", "app"))
	}
}

func TestFailingLivenessProbeRestartsContainer(t *testing.T) {
	t.Parallel()
	ns := namespace(t)
	c := shellContainer("app", "exec sleep 1000")
	c.LivenessProbe = &corev1.Probe{
		ProbeHandler:  corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"sh", "-c", "exit 1"}}},
		PeriodSeconds: 1, FailureThreshold: 2,
	}
	pod := podWith(ns, "unhealthy", c)
	pod.Spec.TerminationGracePeriodSeconds = ptr.To[int64](2)
	createPod(t, pod)
	pod = waitPod(t, ns, "unhealthy", "restarted", func(p *corev1.Pod) bool { return containerStatus(p, "app").RestartCount >= 1 })
	// sleep dies of SIGTERM: 128+15.
	if last := containerStatus(pod, "app").LastTerminationState.Terminated; last == nil || last.ExitCode != 143 {
		t.Errorf("last termination state: %+v", containerStatus(pod, "app").LastTerminationState)
	}
}

func TestDownwardAPIExpansionAndAddressRewrite(t *testing.T) {
	t.Parallel()
	ns := namespace(t)
	c := shellContainer("app", `echo "ip=$MY_IP name=$MY_NAME ns=$MY_NS host=$HOST up=$UP a1=$1 a2=$2"; exec sleep 1000`)
	c.Command = append(c.Command, "sh", "-listen=:9000", "$(MY_IP):$(PORT)")
	c.Env = []corev1.EnvVar{
		{Name: "MY_IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}},
		{Name: "MY_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
		{Name: "MY_NS", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}},
		{Name: "PORT", Value: "8080"},
		{Name: "UP", Value: "localhost:$(PORT)"},
	}
	createPod(t, podWith(ns, "env", c))
	pod := waitPod(t, ns, "env", "ready", isReady)
	ip := pod.Status.PodIP
	want := fmt.Sprintf("ip=%s name=env ns=%s host=%s up=%s:8080 a1=-listen=%s:9000 a2=%s:8080\n", ip, ns, ip, ip, ip, ip)
	testenv.Await(t, waitTimeout, "the container's output", func() (bool, string) {
		got := agent.Logs(ns, "env", "app")
		return got == want, fmt.Sprintf("got %q, want %q", got, want)
	})
}
