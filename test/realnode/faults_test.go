package realnode_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/flint-dev/flint/api/v1alpha1"
	"github.com/flint-dev/flint/internal/testenv"
)

// agentPods lists agent ns/name's pods: all of them, and the Ready ones not
// being deleted.
func agentPods(t *testing.T, ns, name string) (all, ready []corev1.Pod) {
	t.Helper()
	return podsBy(t, ns, "flint.dev/agent="+name)
}

func podsBy(t *testing.T, ns, selector string) (all, ready []corev1.Pod) {
	t.Helper()
	return testenv.Pods(t, node.Kube, ns, selector)
}

// awaitReplicas waits until agent ns/name has exactly n pods, all Ready.
func awaitReplicas(t *testing.T, ns, name string, n int) {
	t.Helper()
	testenv.Await(t, 3*time.Minute, fmt.Sprintf("%s/%s: %d Ready pods and no other", ns, name, n), func() (bool, string) {
		all, ready := agentPods(t, ns, name)
		return len(all) == n && len(ready) == n, testenv.DescribePods(all)
	})
}

func minReplicas(n int32) func(*v1alpha1.Agent) {
	return func(a *v1alpha1.Agent) { a.Spec.Scaling.MinReplicas = ptr.To(n) }
}

// With one replica allowed and both its slots busy, further requests are
// held and then refused with 503 and Retry-After, never sent to the agent.
func TestConcurrencyCapAnswers503WithRetryAfter(t *testing.T) {
	in := installFlint(t)
	ns := newNamespace(t)
	in.create(t, echoAgent(ns, "capped", func(a *v1alpha1.Agent) {
		a.Spec.Concurrency = 2
		a.Spec.Scaling.MinReplicas, a.Spec.Scaling.MaxReplicas = ptr.To[int32](1), ptr.To[int32](1)
	}))
	in.awaitKnown(t, ns, "capped")
	awaitReplicas(t, ns, "capped", 1)
	c := node.HTTPClient()
	c.Timeout = 2 * time.Minute
	var mu sync.Mutex
	var ok, refused int
	var other []string
	var wg sync.WaitGroup
	for range 6 {
		wg.Go(func() {
			res, err := in.get(context.Background(), c, in.url(ns, "capped", "/?sleep=10s"))
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				other = append(other, err.Error())
				return
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			switch {
			case res.StatusCode == http.StatusOK:
				ok++
			case res.StatusCode == http.StatusServiceUnavailable && res.Header.Get("Retry-After") != "":
				refused++
			default:
				other = append(other, fmt.Sprintf("%d (Retry-After %q) %.200s", res.StatusCode, res.Header.Get("Retry-After"), body))
			}
		})
	}
	wg.Wait()
	t.Logf("6 requests of 10s at a cap of 2 on 1 replica: %d served, %d refused with 503 + Retry-After, other %q", ok, refused, other)
	if ok != 2 || refused != 4 || len(other) > 0 {
		t.Errorf("want 2 served (the cap) and 4 refused")
	}
}

// Load beyond one replica's target scales the agent up; when the load
// stops it goes back to zero. 30 rps of 500 ms from zero is over one
// replica's concurrency until the second is ready, so, as the design allows
// for overload, a request may get 503 + Retry-After; nothing else may fail.
func TestScaleUpUnderLoadAndBackToZero(t *testing.T) {
	in := installFlint(t)
	ns := newNamespace(t)
	in.create(t, echoAgent(ns, "scaled", nil))
	in.awaitKnown(t, ns, "scaled")
	// 30 rps × 500 ms ≈ 15 in flight: over the 7 one replica targets.
	l := in.startLoad(in.url(ns, "scaled", "/?sleep=500ms"), 30)
	most := 0
	testenv.Await(t, 3*time.Minute, "scaled to 2 or more Ready replicas", func() (bool, string) {
		all, ready := agentPods(t, ns, "scaled")
		most = max(most, len(ready))
		return len(ready) >= 2, testenv.DescribePods(all)
	})
	time.Sleep(5 * time.Second)
	l.Stop()
	t.Logf("scale up under load: %d Ready replicas at most; %s", most, l)
	if n := l.FailedBeyondOverload(); n > 0 {
		t.Errorf("%d requests failed while scaling up (other than 503 + Retry-After)", n)
	}
	waitAtZero(t, ns, "scaled", 3*time.Minute)
}

// Deleting a replica's pod (a node drain, a scale-down) loses no request:
// the sidecar keeps serving through its drain delay while kube-proxy and the
// gateway stop sending to it.
func TestDeletePodUnderLoad(t *testing.T) {
	in := installFlint(t)
	ns := newNamespace(t)
	in.create(t, echoAgent(ns, "victim", minReplicas(2)))
	in.awaitKnown(t, ns, "victim")
	awaitReplicas(t, ns, "victim", 2)
	l := in.startLoad(in.url(ns, "victim", "/?sleep=50ms"), 20)
	time.Sleep(3 * time.Second)
	_, ready := agentPods(t, ns, "victim")
	gone := ready[0].Name
	if err := node.Kube.CoreV1().Pods(ns).Delete(context.Background(), gone, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	testenv.Await(t, 3*time.Minute, "the pod gone and a replacement Ready", func() (bool, string) {
		all, ready := agentPods(t, ns, "victim")
		for _, p := range all {
			if p.Name == gone {
				return false, testenv.DescribePods(all)
			}
		}
		return len(ready) == 2, testenv.DescribePods(all)
	})
	time.Sleep(time.Second)
	l.Stop()
	t.Logf("pod deleted under load: %s", l)
	if n := l.Failed(); n > 0 {
		t.Errorf("%d requests failed while a pod was deleted", n)
	}
}

// Changing the Agent's spec rolls its pods with no failed request.
func TestRollingUpdateUnderLoad(t *testing.T) {
	in := installFlint(t)
	ns := newNamespace(t)
	in.create(t, echoAgent(ns, "rolled", minReplicas(2)))
	in.awaitKnown(t, ns, "rolled")
	awaitReplicas(t, ns, "rolled", 2)
	_, before := agentPods(t, ns, "rolled")
	l := in.startLoad(in.url(ns, "rolled", "/?sleep=50ms"), 20)
	time.Sleep(3 * time.Second)
	testenv.UpdateAgent(t, in.client, ns, "rolled", func(a *v1alpha1.Agent) {
		a.Spec.Container.Env = append(a.Spec.Container.Env, corev1.EnvVar{Name: "ROLLOUT", Value: "2"})
	})
	testenv.Await(t, 3*time.Minute, "every pod replaced and Ready", func() (bool, string) {
		all, ready := agentPods(t, ns, "rolled")
		for _, p := range all {
			for _, old := range before {
				if p.Name == old.Name {
					return false, testenv.DescribePods(all)
				}
			}
		}
		return len(all) == 2 && len(ready) == 2, testenv.DescribePods(all)
	})
	time.Sleep(time.Second)
	l.Stop()
	t.Logf("rolling update under load: %s", l)
	if n := l.Failed(); n > 0 {
		t.Errorf("%d requests failed during the rolling update", n)
	}
}

// A rollout of the gateway Deployment behind its Service loses no request:
// each old gateway fails readiness and keeps serving for its drain delay
// while the EndpointSlice and real kube-proxy stop sending to it.
func TestGatewayRolloutUnderLoad(t *testing.T) {
	in := installFlint(t)
	ns := newNamespace(t)
	in.create(t, echoAgent(ns, "steady", minReplicas(1)))
	in.awaitKnown(t, ns, "steady")
	awaitReplicas(t, ns, "steady", 1)
	const gwSel = "app.kubernetes.io/component=gateway"
	_, before := podsBy(t, flintNS, gwSel)
	l := in.startLoad(in.url(ns, "steady", "/?sleep=50ms"), 20)
	time.Sleep(3 * time.Second)
	start := time.Now()
	patch := fmt.Sprintf(`{"spec":{"template":{"metadata":{"annotations":{"flint.test/restartedAt":%q}}}}}`, start.Format(time.RFC3339Nano))
	if _, err := node.Kube.AppsV1().Deployments(flintNS).Patch(context.Background(), "flint-gateway", types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	testenv.Await(t, 4*time.Minute, "every gateway replaced and Ready", func() (bool, string) {
		all, ready := podsBy(t, flintNS, gwSel)
		for _, p := range all {
			for _, old := range before {
				if p.Name == old.Name {
					return false, testenv.DescribePods(all)
				}
			}
		}
		return len(all) == len(before) && len(ready) == len(before), testenv.DescribePods(all)
	})
	took := time.Since(start)
	time.Sleep(2 * time.Second)
	l.Stop()
	t.Logf("gateway rollout (%d replicas) under load, %s: %s", len(before), took.Round(time.Millisecond), l)
	if n := l.Failed(); n > 0 {
		t.Errorf("%d requests failed during the gateway rollout", n)
	}
	in.awaitKnown(t, ns, "steady")
}

// After the manager restarts, an agent at zero still wakes on a request.
func TestManagerRestartWakesAgentAtZero(t *testing.T) {
	in := installFlint(t)
	ns := newNamespace(t)
	in.create(t, echoAgent(ns, "sleeper", nil))
	in.awaitKnown(t, ns, "sleeper")
	waitAtZero(t, ns, "sleeper", 3*time.Minute)
	const mgrSel = "app.kubernetes.io/component=manager"
	_, before := podsBy(t, flintNS, mgrSel)
	for _, p := range before {
		if err := node.Kube.CoreV1().Pods(flintNS).Delete(context.Background(), p.Name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Await(t, 3*time.Minute, "a new manager Ready", func() (bool, string) {
		all, ready := podsBy(t, flintNS, mgrSel)
		for _, p := range ready {
			for _, old := range before {
				if p.Name == old.Name {
					return false, testenv.DescribePods(all)
				}
			}
		}
		return len(ready) == len(before), testenv.DescribePods(all)
	})
	c := node.HTTPClient()
	c.Timeout = 2 * time.Minute
	start := time.Now()
	res, err := in.get(context.Background(), c, in.url(ns, "sleeper", "/after-restart"))
	if err != nil {
		t.Fatalf("%v\n%s", err, podsReport(ns)+podsReport(flintNS))
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	t.Logf("after the manager restarted: %d in %s (cold-start wait %s)", res.StatusCode, time.Since(start).Round(time.Millisecond), res.Header.Get("X-Flint-Cold-Start-Wait"))
	if res.StatusCode != http.StatusOK {
		t.Errorf("want 200, got %d %s", res.StatusCode, body)
	}
}
