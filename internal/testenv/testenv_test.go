package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/flint-dev/flint/api/v1alpha1"
)

func TestMain(m *testing.M) {
	// controller-runtime warns, with a stack trace, when nothing set a logger.
	ctrllog.SetLogger(logr.Discard())
	if os.Getenv(helperEnv) != "" {
		helperProcess()
		return
	}
	os.Exit(m.Run())
}

func TestMissingBinariesSayHowToBuildThem(t *testing.T) {
	t.Setenv("KUBEBUILDER_ASSETS", t.TempDir())
	env, err := New(Options{})
	if err == nil {
		env.Stop()
		t.Fatal("New succeeded without binaries")
	}
	if !strings.Contains(err.Error(), "run hack/kube-binaries.sh") {
		t.Fatalf("error does not say how to get the binaries: %v", err)
	}
}

// TestControllerManager proves the harness, not Flint's reconciler: a
// Deployment owned by an Agent gets a ReplicaSet and Pods from
// kube-controller-manager and is garbage-collected with the Agent.
func TestControllerManager(t *testing.T) {
	env := Start(t, Options{ControllerManager: true})
	ctx := t.Context()
	ns := env.Namespace(t)
	c := env.Client

	agent := &v1alpha1.Agent{
		ObjectMeta: metav1.ObjectMeta{Name: "owner", Namespace: ns},
		Spec: v1alpha1.AgentSpec{Container: v1alpha1.AgentContainer{
			Image: "example.com/echo:1", Port: 8080,
		}},
	}
	if err := c.Create(ctx, agent); err != nil {
		t.Fatalf("create agent: %v", err)
	}
	labels := map[string]string{"flint.dev/agent": agent.Name}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{
			Name: "owner", Namespace: ns,
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: v1alpha1.GroupVersion.String(), Kind: "Agent",
				Name: agent.Name, UID: agent.UID,
				Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true),
			}},
		},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](2),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "agent", Image: "example.com/echo:1",
				}}},
			},
		},
	}
	if err := c.Create(ctx, dep); err != nil {
		t.Fatalf("create deployment: %v", err)
	}

	// kube-controller-manager's controllers and garbage collector react
	// within seconds, even on 2 cores.
	Eventually(t, time.Minute, func() error {
		var rss appsv1.ReplicaSetList
		if err := c.List(ctx, &rss, client.InNamespace(ns)); err != nil {
			return err
		}
		var pods corev1.PodList
		if err := c.List(ctx, &pods, client.InNamespace(ns), client.MatchingLabels(labels)); err != nil {
			return err
		}
		if len(rss.Items) != 1 || !ownedBy(rss.Items[0].OwnerReferences, dep.UID) || len(pods.Items) != 2 {
			return fmt.Errorf("waiting for a ReplicaSet owned by the Deployment with 2 Pods: %d ReplicaSets, %d Pods", len(rss.Items), len(pods.Items))
		}
		return nil
	})

	if err := c.Delete(ctx, agent); err != nil {
		t.Fatalf("delete agent: %v", err)
	}
	Eventually(t, time.Minute, func() error {
		err := c.Get(ctx, client.ObjectKeyFromObject(dep), &appsv1.Deployment{})
		if !apierrors.IsNotFound(err) {
			return fmt.Errorf("waiting for the Deployment to be garbage-collected: %v", err)
		}
		var rss appsv1.ReplicaSetList
		var pods corev1.PodList
		if err := c.List(ctx, &rss, client.InNamespace(ns)); err != nil {
			return err
		}
		if err := c.List(ctx, &pods, client.InNamespace(ns)); err != nil {
			return err
		}
		if len(rss.Items) != 0 || len(pods.Items) != 0 {
			return fmt.Errorf("waiting for the ReplicaSet and Pods to be garbage-collected: %d ReplicaSets, %d Pods left", len(rss.Items), len(pods.Items))
		}
		return nil
	})

	// Stop is idempotent (t.Cleanup calls it again) and leaves nothing behind.
	pids := env.guarded
	if len(pids) != 3 {
		t.Errorf("want 3 control-plane processes (etcd, kube-apiserver, kube-controller-manager), found %v", pids)
	}
	if err := env.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	assertGone(t, env.Dir, pids)
}

func ownedBy(refs []metav1.OwnerReference, uid any) bool {
	for _, r := range refs {
		if r.UID == uid {
			return true
		}
	}
	return false
}

// assertGone checks that no process in pids is alive and dir is removed.
func assertGone(t *testing.T, dir string, pids []int) {
	t.Helper()
	for _, p := range pids {
		if _, err := os.Stat(filepath.Join("/proc", strconv.Itoa(p))); err == nil {
			cmdline, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(p), "cmdline"))
			if strings.Contains(string(cmdline), dir) {
				t.Errorf("process %d still running: %s", p, strings.ReplaceAll(string(cmdline), "\x00", " "))
			}
		}
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s not removed (stat: %v)", dir, err)
	}
}
