package nodeagent_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/flint-dev/flint/internal/testenv"
)

// waitTimeout is generous: a loaded 2-core machine runs the control plane,
// the build cache and the containers.
const waitTimeout = 60 * time.Second

func createPod(t *testing.T, pod *corev1.Pod) *corev1.Pod {
	t.Helper()
	created, err := client.CoreV1().Pods(pod.Namespace).Create(context.Background(), pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create pod %s: %v", pod.Name, err)
	}
	return created
}

func getPod(t *testing.T, ns, name string) *corev1.Pod {
	t.Helper()
	pod, err := client.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get pod %s/%s: %v", ns, name, err)
	}
	return pod
}

// waitPod waits until cond holds for pod ns/name and returns it.
func waitPod(t *testing.T, ns, name, what string, cond func(*corev1.Pod) bool) *corev1.Pod {
	t.Helper()
	var pod *corev1.Pod
	testenv.Await(t, waitTimeout, fmt.Sprintf("pod %s/%s %s", ns, name, what), func() (bool, string) {
		p, err := client.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		pod = p
		return cond(p), describe(p)
	})
	return pod
}

func waitPodGone(t *testing.T, ns, name string) {
	t.Helper()
	testenv.Await(t, waitTimeout, fmt.Sprintf("pod %s/%s to be deleted", ns, name), func() (bool, string) {
		p, err := client.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, ""
		}
		if err != nil {
			return false, err.Error()
		}
		return false, describe(p)
	})
	// The API answers NotFound before the agent's Delete call has returned
	// and its last event is logged.
	testenv.Await(t, waitTimeout, "the agent to log the deletion", func() (bool, string) {
		return len(events.about(ns+"/"+name+": pod deleted")) > 0, ""
	})
}

func deletePod(t *testing.T, ns, name string, opts metav1.DeleteOptions) {
	t.Helper()
	if err := client.CoreV1().Pods(ns).Delete(context.Background(), name, opts); err != nil {
		t.Fatalf("delete pod %s/%s: %v", ns, name, err)
	}
}

func isReady(p *corev1.Pod) bool { return condition(p, corev1.PodReady) == corev1.ConditionTrue }

func condition(p *corev1.Pod, t corev1.PodConditionType) corev1.ConditionStatus {
	for _, c := range p.Status.Conditions {
		if c.Type == t {
			return c.Status
		}
	}
	return ""
}

// describe is a one-line summary of a pod's status for failure messages.
func describe(p *corev1.Pod) string {
	var b strings.Builder
	fmt.Fprintf(&b, "phase=%s ip=%s", p.Status.Phase, p.Status.PodIP)
	for _, c := range p.Status.Conditions {
		fmt.Fprintf(&b, " %s=%s", c.Type, c.Status)
	}
	for _, s := range append(slices.Clone(p.Status.InitContainerStatuses), p.Status.ContainerStatuses...) {
		fmt.Fprintf(&b, " [%s ready=%v restarts=%d %s]", s.Name, s.Ready, s.RestartCount, stateString(s.State))
	}
	return b.String()
}

func stateString(s corev1.ContainerState) string {
	switch {
	case s.Running != nil:
		return "running"
	case s.Terminated != nil:
		return fmt.Sprintf("terminated(%s, %d)", s.Terminated.Reason, s.Terminated.ExitCode)
	case s.Waiting != nil:
		return fmt.Sprintf("waiting(%s: %s)", s.Waiting.Reason, s.Waiting.Message)
	}
	return "unknown"
}

func containerStatus(p *corev1.Pod, name string) corev1.ContainerStatus {
	for _, s := range append(slices.Clone(p.Status.InitContainerStatuses), p.Status.ContainerStatuses...) {
		if s.Name == name {
			return s
		}
	}
	return corev1.ContainerStatus{}
}

// echoContainer is the echo example on port 8080 with a readiness probe.
func echoContainer() corev1.Container {
	return corev1.Container{
		Name: "echo", Image: echoImage,
		Env:   []corev1.EnvVar{{Name: "PORT", Value: "8080"}},
		Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
		ReadinessProbe: &corev1.Probe{
			ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromString("http")}},
			PeriodSeconds: 1,
		},
	}
}

// shellContainer runs script with /bin/sh -c.
func shellContainer(name, script string) corev1.Container {
	return corev1.Container{Name: name, Image: shellImage, Command: []string{"sh", "-c", script}}
}

func podWith(ns, name string, containers ...corev1.Container) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: corev1.PodSpec{
			Containers:                    containers,
			TerminationGracePeriodSeconds: ptr.To[int64](5),
		},
	}
}

// httpGet returns the status and body of GET url.
func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// indexOf returns the index of the first line containing s, or -1.
func indexOf(lines []string, s string) int {
	return slices.IndexFunc(lines, func(l string) bool { return strings.Contains(l, s) })
}

// eventIndex returns the index among lines of the first line matching
// pattern, failing t if there is none.
func eventIndex(t *testing.T, lines []string, pattern string) int {
	t.Helper()
	re := regexp.MustCompile(pattern)
	for i, l := range lines {
		if re.MatchString(l) {
			return i
		}
	}
	t.Fatalf("no event matches %q in:\n%s", pattern, strings.Join(lines, "\n"))
	return -1
}

// inOrder checks that events matching the patterns happened in this order.
func inOrder(t *testing.T, lines []string, patterns ...string) {
	t.Helper()
	prev := -1
	for _, p := range patterns {
		i := eventIndex(t, lines, p)
		if i <= prev {
			t.Fatalf("event %q happened before %q:\n%s", p, patterns[slices.Index(patterns, p)-1], strings.Join(lines, "\n"))
		}
		prev = i
	}
}

// pidOf returns the pid of the first instance of container c of pod key
// ("ns/pod"), from the agent's events.
func pidOf(t *testing.T, key, c string) int {
	t.Helper()
	lines := events.about(key + ": started container " + c + " ")
	if len(lines) == 0 {
		t.Fatalf("container %s of %s never started", c, key)
	}
	m := regexp.MustCompile(`\(pid (\d+)\)`).FindStringSubmatch(lines[0])
	pid, _ := strconv.Atoi(m[1])
	return pid
}

// podProcesses returns the pids of the live processes of pod name run by
// this package's agent, found by their environment (so children that left
// the container's process group count too).
func podProcesses(name string) []int {
	var pids []int
	entries, _ := filepath.Glob("/proc/[0-9]*/environ")
	for _, path := range entries {
		env, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		vars := strings.Split(string(env), "\x00")
		if !slices.Contains(vars, "HOSTNAME="+name) || !slices.ContainsFunc(vars, isOurMarker) {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(path)))
		if processAlive(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

func isOurMarker(v string) bool { return strings.HasPrefix(v, "FLINT_NODE_AGENT="+nodeName+"-") }

// processAlive reports whether pid is a live (not zombie) process started
// by this package's agent.
func processAlive(pid int) bool {
	env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil || !slices.ContainsFunc(strings.Split(string(env), "\x00"), isOurMarker) {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(stat), ')')
	return i > 0 && i+2 < len(stat) && stat[i+2] != 'Z'
}
