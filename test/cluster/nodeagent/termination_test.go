package nodeagent_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/flint-dev/flint/internal/testenv"
	"github.com/flint-dev/flint/test/cluster/nodeagent"
)

func TestDeletionRunsPreStopThenKillsAtGraceDeadline(t *testing.T) {
	t.Parallel()
	ns := namespace(t)
	mark := filepath.Join(t.TempDir(), "prestop-ran")
	// Ignores SIGTERM (the ignore is inherited by sleep): only SIGKILL at
	// the end of the grace period stops it.
	stubborn := shellContainer("stubborn", `trap "" TERM; echo started; sleep 1000`)
	stubborn.Lifecycle = &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{
		Exec: &corev1.ExecAction{Command: []string{"sh", "-c", "echo ran > " + mark}},
	}}
	pod := podWith(ns, "stubborn", stubborn)
	pod.Spec.TerminationGracePeriodSeconds = ptr.To[int64](3)
	createPod(t, pod)
	waitPod(t, ns, "stubborn", "ready", isReady)
	testenv.Await(t, waitTimeout, "the shell to start sleep", func() (bool, string) {
		pids := podProcesses("stubborn")
		return len(pids) >= 2, strings.Join(events.about(ns+"/stubborn"), "\n")
	})

	deleted := time.Now()
	deletePod(t, ns, "stubborn", metav1.DeleteOptions{})
	waitPodGone(t, ns, "stubborn")
	took := time.Since(deleted)
	t.Logf("delete → pod object gone: %s", took.Round(time.Millisecond))
	if took < 3*time.Second || took > 8*time.Second {
		t.Errorf("pod with a 3s grace period that ignores SIGTERM went away after %s", took)
	}
	inOrder(t, events.about(ns+"/stubborn:"),
		"running preStop hook of stubborn", "preStop hook of stubborn done", "sending SIGTERM to stubborn",
		"stubborn did not exit in time: sending SIGKILL", "container stubborn exited with code 137", "pod deleted")
	if data, err := os.ReadFile(mark); err != nil || string(data) != "ran\n" {
		t.Errorf("preStop exec hook did not run: %q %v", data, err)
	}
	if pids := podProcesses("stubborn"); len(pids) > 0 {
		t.Errorf("processes of the deleted pod still run: %v", pids)
	}
}

func TestForceDeletionStopsProcesses(t *testing.T) {
	t.Parallel()
	ns := namespace(t)
	createPod(t, podWith(ns, "forced", shellContainer("app", "exec sleep 1000")))
	waitPod(t, ns, "forced", "ready", isReady)
	deletePod(t, ns, "forced", metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)})
	testenv.Await(t, waitTimeout, "the processes of a force-deleted pod to stop", func() (bool, string) {
		pids := podProcesses("forced")
		return len(pids) == 0, strings.Join(events.about(ns+"/forced"), "\n")
	})
}

func TestStopKillsEveryProcess(t *testing.T) {
	t.Parallel()
	ns := namespace(t)
	// A second agent of its own, with a node of its own; the pod names
	// that node, so the shared agent's binder leaves it alone.
	other := nodeagentStart(t, "nodeagent-stop-test")
	pod := podWith(ns, "orphan", shellContainer("app", `trap "" TERM; sleep 1000`))
	pod.Spec.NodeName = other.NodeName()
	createPod(t, pod)
	waitPod(t, ns, "orphan", "ready", isReady)
	if len(other.LiveProcesses()) < 2 {
		t.Fatalf("expected the shell and its sleep, got %v", other.LiveProcesses())
	}
	stopping := time.Now()
	other.Stop()
	if took := time.Since(stopping); took > 5*time.Second {
		t.Errorf("Stop took %s", took)
	}
	if pids := other.LiveProcesses(); len(pids) > 0 {
		t.Errorf("processes left after Stop: %v", pids)
	}
	// Stop leaves the API alone, like a kubelet that went away; remove
	// the pod so the namespace can finish deleting.
	deletePod(t, ns, "orphan", metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)})
}

// nodeagentStart starts a second agent for t that binds no pods: pods
// reach it by naming its node.
func nodeagentStart(t *testing.T, node string) *nodeagent.Agent {
	return nodeagent.StartForTest(t, nodeagent.Config{
		Client: client, NodeName: node, Images: map[string]string{shellImage: "/bin/sh"},
		Namespaces: []string{"no-such-namespace"}, StopTimeout: 500 * time.Millisecond,
	})
}
