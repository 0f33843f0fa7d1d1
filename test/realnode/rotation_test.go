package realnode_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flint-dev/flint/internal/testenv"
)

// TestAPIKeyAddedToTheSecretIsAcceptedWithoutRestart adds an API key to
// the Secret the manager created, as an operator rotating keys does, and
// waits until every gateway pod accepts it: the kubelet rewrites the
// mounted file in place and the gateway re-reads it (within 10 s), with no
// restart. The harness's kubelet syncs pods every 10 s (a real one: every
// minute), so the wait here is short.
func TestAPIKeyAddedToTheSecretIsAcceptedWithoutRestart(t *testing.T) {
	in := installFlint(t)
	ns := newNamespace(t)
	in.create(t, echoAgent(ns, "echo", nil))
	in.awaitKnown(t, ns, "echo")
	ctx := context.Background()
	secrets := node.Kube.CoreV1().Secrets(flintNS)

	gws, err := node.Kube.CoreV1().Pods(flintNS).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/component=gateway"})
	if err != nil || len(gws.Items) == 0 {
		t.Fatalf("list gateway pods: %v (%d)", err, len(gws.Items))
	}
	restarts := map[string]int32{}
	for _, p := range gws.Items {
		for _, cs := range p.Status.ContainerStatuses {
			restarts[p.Name] += cs.RestartCount
		}
	}

	s, err := secrets.Get(ctx, "flint-api-keys", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	original := s.Data["keys"]
	t.Cleanup(func() { // the other tests use the first key, which stays; leave the Secret as found
		if s, err := secrets.Get(ctx, "flint-api-keys", metav1.GetOptions{}); err == nil {
			s.Data["keys"] = original
			_, _ = secrets.Update(ctx, s, metav1.UpdateOptions{})
		}
	})
	newKey := rand.Text() + rand.Text()
	s.Data["keys"] = append(append([]byte{}, original...), []byte("\n"+newKey+"  # added by "+t.Name()+"\n")...)
	if _, err := secrets.Update(ctx, s, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	updated := time.Now()

	c := node.HTTPClient()
	c.Timeout = 5 * time.Second
	for _, gw := range gws.Items {
		testenv.Await(t, 90*time.Second, "gateway "+gw.Name+" accepts the new key", func() (bool, string) {
			// The admin port's description of the agent: authenticated, no wake-up.
			req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("http://%s:9091/api/v1/agents/%s/echo", gw.Status.PodIP, ns), nil)
			req.Header.Set("Authorization", "Bearer "+newKey)
			res, err := c.Do(req)
			if err != nil {
				return false, err.Error()
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			return res.StatusCode == http.StatusOK, fmt.Sprintf("%d", res.StatusCode)
		})
		t.Logf("gateway %s accepts the new key %s after the Secret's update", gw.Name, time.Since(updated).Round(100*time.Millisecond))
	}

	// An invocation through the gateway's Service with the new key.
	c.Timeout = 2 * time.Minute
	req, _ := http.NewRequest(http.MethodGet, in.url(ns, "echo", "/rotated"), nil)
	req.Header.Set("Authorization", "Bearer "+newKey)
	res, err := c.Do(req)
	if err != nil {
		t.Fatalf("invoke with the new key: %v\n%s", err, podsReport(ns))
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Errorf("invoke with the new key: %d, want 200", res.StatusCode)
	}

	after, err := node.Kube.CoreV1().Pods(flintNS).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/component=gateway"})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range after.Items {
		before, known := restarts[p.Name]
		var now int32
		for _, cs := range p.Status.ContainerStatuses {
			now += cs.RestartCount
		}
		if !known || now != before {
			t.Errorf("gateway pod %s: new or restarted (restarts %d, before %d, known %v): the key must apply without a restart", p.Name, now, before, known)
		}
	}
}
