package realnode_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/release"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flint-dev/flint/internal/testenv"
)

// The chart installs through the Helm Go library against the node's API
// server (CRD, RBAC, Services, Deployments). Replicas are 0 until the flint
// image is built in the repository (hack/images): this shows the install
// path, not Flint running.
func TestHelmInstallsTheChart(t *testing.T) {
	needNode(t)
	root, err := testenv.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ns := "flint-system"
	values := map[string]any{
		"manager": map[string]any{"replicas": 0},
		"gateway": map[string]any{"replicas": 0},
	}
	start := time.Now()
	rel, err := node.HelmInstall(ctx, filepath.Join(root, "deploy", "helm", "flint"), "flint", ns, values, 2*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = node.Kube.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{})
	})
	t.Logf("helm install: %s in %s", rel.Info.Status, time.Since(start).Round(time.Millisecond))
	if rel.Info.Status != release.StatusDeployed {
		t.Fatalf("release status %s, want deployed", rel.Info.Status)
	}
	for _, name := range []string{"flint-manager", "flint-gateway"} {
		if _, err := node.Kube.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{}); err != nil {
			t.Errorf("Deployment %s: %v", name, err)
		}
	}
}
