package e2e

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flint-dev/flint/api/v1alpha1"
	"github.com/flint-dev/flint/internal/testenv"
)

// TestScaleUpUnderLoadAndBackDown: steady load needing several replicas
// scales the agent out from one with no failed request, and once the load
// stops it goes back to zero.
func TestScaleUpUnderLoadAndBackDown(t *testing.T) {
	t.Parallel()
	ns := namespace(t)
	create(t, echoAgent(ns, "echo", func(a *v1alpha1.Agent) {
		a.Spec.Concurrency = 4 // target 3 in flight per replica
		a.Spec.Scaling.MinReplicas = ptr32(1)
	}))
	waitKnown(t, direct, ns, "echo")
	testenv.Await(t, waitTimeout, "the first replica", func() (bool, string) {
		_, ready := pods(t, ns, "echo")
		return len(ready) == 1, testenv.DescribePods(ready)
	})
	// 40 req/s of 200ms each keep 8 requests in flight: 3 replicas.
	l := startLoad(invokeURL(direct, ns, "echo", "/?sleep=200ms"), 40)
	peak := 0
	testenv.Await(t, waitTimeout, "at least 3 ready replicas under load", func() (bool, string) {
		_, ready := pods(t, ns, "echo")
		peak = max(peak, len(ready))
		return len(ready) >= 3, fmt.Sprintf("%d ready; load %s", len(ready), l)
	})
	time.Sleep(3 * time.Second) // keep the load on the scaled-out agent a while
	l.Stop()
	t.Logf("scale-up under load: %s", l)
	if n := l.FailedBeyondOverload(); n > 0 {
		t.Errorf("%d requests failed during scale-up: %s", n, l)
	}
	if l.Count(http.StatusOK) == 0 {
		t.Fatalf("no request succeeded: %s", l)
	}

	// Back down: minReplicas 0 lets it go to zero once idle.
	testenv.UpdateAgent(t, env.Client, ns, "echo", func(a *v1alpha1.Agent) { a.Spec.Scaling.MinReplicas = ptr32(0) })
	begin := time.Now()
	waitScaledToZero(t, ns, "echo")
	t.Logf("back to zero %s after the load stopped (scaleToZeroAfter 10s, stableWindow 6s)", time.Since(begin).Round(time.Second))
}

// TestConcurrencyCapAnswers503WithRetryAfter: with one replica allowed and
// both its slots busy, further requests are held for the capacity hold
// (5s) and then refused with 503 and Retry-After, never sent to the agent.
func TestConcurrencyCapAnswers503WithRetryAfter(t *testing.T) {
	t.Parallel()
	ns := namespace(t)
	create(t, echoAgent(ns, "echo", func(a *v1alpha1.Agent) {
		a.Spec.Concurrency = 2
		a.Spec.Scaling.MinReplicas, a.Spec.Scaling.MaxReplicas = ptr32(1), ptr32(1)
	}))
	waitKnown(t, direct, ns, "echo")
	testenv.Await(t, waitTimeout, "the replica", func() (bool, string) {
		_, ready := pods(t, ns, "echo")
		return len(ready) == 1, testenv.DescribePods(ready)
	})
	type outcome struct {
		status     int
		retryAfter string
	}
	var mu sync.Mutex
	var outcomes []outcome
	var wg sync.WaitGroup
	for range 6 {
		wg.Go(func() {
			res, err := http.Get(invokeURL(direct, ns, "echo", "/?sleep=8s"))
			if err != nil {
				t.Error(err)
				return
			}
			res.Body.Close()
			mu.Lock()
			outcomes = append(outcomes, outcome{res.StatusCode, res.Header.Get("Retry-After")})
			mu.Unlock()
		})
	}
	wg.Wait()
	ok, refused := 0, 0
	for _, o := range outcomes {
		switch {
		case o.status == http.StatusOK:
			ok++
		case o.status == http.StatusServiceUnavailable && o.retryAfter != "":
			refused++
		default:
			t.Errorf("unexpected answer %d (Retry-After %q)", o.status, o.retryAfter)
		}
	}
	if ok != 2 || refused != 4 {
		t.Errorf("%d served and %d refused, want 2 (the cap) and 4", ok, refused)
	}
}

// TestDeletePodUnderLoad: deleting a replica's pod (what a node drain or a
// scale-down does) loses no request: the sidecar fails readiness, keeps
// serving through the drain delay, and the gateway stops picking the pod
// when its endpoint turns terminating.
func TestDeletePodUnderLoad(t *testing.T) {
	t.Parallel()
	ns := namespace(t)
	create(t, echoAgent(ns, "echo", func(a *v1alpha1.Agent) { a.Spec.Scaling.MinReplicas = ptr32(3) }))
	waitKnown(t, direct, ns, "echo")
	testenv.Await(t, waitTimeout, "3 ready replicas", func() (bool, string) {
		_, ready := pods(t, ns, "echo")
		return len(ready) == 3, testenv.DescribePods(ready)
	})
	l := startLoad(invokeURL(direct, ns, "echo", "/?sleep=50ms"), 50)
	time.Sleep(2 * time.Second)
	_, ready := pods(t, ns, "echo")
	victim := ready[0].Name
	if err := kube.CoreV1().Pods(ns).Delete(context.Background(), victim, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	testenv.Await(t, waitTimeout, "the pod gone and a replacement ready", func() (bool, string) {
		all, ready := pods(t, ns, "echo")
		for _, p := range all {
			if p.Name == victim {
				return false, testenv.DescribePods(all)
			}
		}
		return len(ready) == 3, testenv.DescribePods(all)
	})
	time.Sleep(time.Second)
	l.Stop()
	t.Logf("pod deleted under load: %s", l)
	if n := l.FailedBeyondOverload(); n > 0 || l.Count(http.StatusServiceUnavailable) > 0 {
		t.Errorf("requests failed or were refused while a pod was deleted: %s", l)
	}
}

// TestRollingUpdateUnderLoad: changing the Agent's spec rolls its pods
// (surge first, never below capacity) with no failed request.
func TestRollingUpdateUnderLoad(t *testing.T) {
	t.Parallel()
	ns := namespace(t)
	create(t, echoAgent(ns, "echo", func(a *v1alpha1.Agent) { a.Spec.Scaling.MinReplicas = ptr32(2) }))
	waitKnown(t, direct, ns, "echo")
	testenv.Await(t, waitTimeout, "2 ready replicas", func() (bool, string) {
		_, ready := pods(t, ns, "echo")
		return len(ready) == 2, testenv.DescribePods(ready)
	})
	_, before := pods(t, ns, "echo")
	l := startLoad(invokeURL(direct, ns, "echo", "/?sleep=50ms"), 50)
	time.Sleep(2 * time.Second)
	testenv.UpdateAgent(t, env.Client, ns, "echo", func(a *v1alpha1.Agent) {
		a.Spec.Container.Env = append(a.Spec.Container.Env, corev1EnvVar("ROLLOUT", "2"))
	})
	testenv.Await(t, waitTimeout, "every pod replaced and ready", func() (bool, string) {
		all, ready := pods(t, ns, "echo")
		for _, p := range all {
			for _, old := range before {
				if p.Name == old.Name {
					return false, testenv.DescribePods(all)
				}
			}
		}
		return len(ready) == 2 && len(all) == 2, testenv.DescribePods(all)
	})
	time.Sleep(time.Second)
	l.Stop()
	t.Logf("rolling update under load: %s", l)
	if n := l.FailedBeyondOverload(); n > 0 || l.Count(http.StatusServiceUnavailable) > 0 {
		t.Errorf("requests failed or were refused during the rolling update: %s", l)
	}
}
