package realnode_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// An Agent in a namespace enforcing Pod Security "restricted" runs and
// serves through the gateway (the manager's pods meet the profile), and a
// request sent straight to its pod's sidecar, bypassing the gateway, is
// refused with 403.
func TestRestrictedNamespaceServesAndRefusesBypass(t *testing.T) {
	in := installFlint(t)
	ns := newNamespace(t)
	patch := `{"metadata":{"labels":{"pod-security.kubernetes.io/enforce":"restricted","pod-security.kubernetes.io/enforce-version":"latest"}}}`
	if _, err := node.Kube.CoreV1().Namespaces().Patch(context.Background(), ns, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	in.create(t, echoAgent(ns, "strict", minReplicas(1)))
	in.awaitKnown(t, ns, "strict")
	awaitReplicas(t, ns, "strict", 1)

	c := node.HTTPClient()
	c.Timeout = time.Minute
	res, err := in.get(context.Background(), c, in.url(ns, "strict", "/through-gateway"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("through the gateway: %d %s", res.StatusCode, body)
	}

	_, ready := agentPods(t, ns, "strict")
	var port int32
	for _, ctr := range append(ready[0].Spec.InitContainers, ready[0].Spec.Containers...) {
		for _, p := range ctr.Ports {
			if ctr.Name == "flint-proxy" && p.Name == "http" {
				port = p.ContainerPort
			}
		}
	}
	if port == 0 {
		t.Fatalf("no http port on the sidecar of %s", ready[0].Name)
	}
	for _, hdr := range []http.Header{{}, {"Authorization": {"Bearer " + in.apiKey}}} {
		req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("http://%s:%d/bypass", ready[0].Status.PodIP, port), nil)
		req.Header = hdr
		res, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		t.Logf("straight to the sidecar (%d headers): %d %s", len(hdr), res.StatusCode, strings.TrimSpace(string(body)))
		if res.StatusCode != http.StatusForbidden {
			t.Errorf("a request bypassing the gateway got %d, want 403", res.StatusCode)
		}
	}
	pod := ready[0]
	for _, cs := range append(pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses...) {
		if cs.RestartCount > 0 {
			t.Errorf("container %s restarted %d times", cs.Name, cs.RestartCount)
		}
	}
}
