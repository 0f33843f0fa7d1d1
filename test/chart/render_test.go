// Package chart tests the Helm chart in deploy/helm/flint: it renders with
// Helm's own engine (the library `helm template` uses), and the rendered
// objects are checked for least-privilege RBAC, the NetworkPolicy, the
// flags the manager and gateway get, and against a real API server.
package chart

import (
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/flint-dev/flint/internal/testenv"
)

const (
	releaseName      = "rel"
	releaseNamespace = "flint-system"
	kubeVersion      = "v" + testenv.KubernetesVersion
)

func chartDir(t testing.TB) string {
	t.Helper()
	root, err := testenv.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(root, "deploy", "helm", "flint")
}

// render renders the chart as `helm template rel -n flint-system --set ...`
// would, with strict rendering (a template reading an unset value fails),
// and returns the objects it produces.
func render(t testing.TB, values map[string]any, apiVersions ...string) []*unstructured.Unstructured {
	t.Helper()
	files, err := renderFiles(t, values, apiVersions...)
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	var objs []*unstructured.Unstructured
	for _, name := range names {
		if strings.HasSuffix(name, "NOTES.txt") || strings.HasSuffix(name, ".tpl") {
			continue
		}
		for i, doc := range strings.Split(files[name], "\n---") {
			if strings.TrimSpace(doc) == "" {
				continue
			}
			var m map[string]any
			if err := yaml.UnmarshalStrict([]byte(doc), &m); err != nil {
				t.Fatalf("%s document %d does not parse: %v\n%s", name, i, err, doc)
			}
			if m == nil {
				continue // only comments
			}
			u := &unstructured.Unstructured{Object: m}
			if u.GetAPIVersion() == "" || u.GetKind() == "" || u.GetName() == "" {
				t.Fatalf("%s document %d lacks apiVersion, kind or name:\n%s", name, i, doc)
			}
			objs = append(objs, u)
		}
	}
	return objs
}

// renderFiles renders the chart's templates; apiVersions are API
// versions (and group/version/Kind) the cluster has besides the built-in ones.
// Values are checked against values.schema.json first, as Helm does.
func renderFiles(t testing.TB, values map[string]any, apiVersions ...string) (map[string]string, error) {
	t.Helper()
	ch, err := loader.Load(chartDir(t))
	if err != nil {
		t.Fatalf("load chart: %v", err)
	}
	caps := chartutil.DefaultCapabilities.Copy()
	kv, err := chartutil.ParseKubeVersion(kubeVersion)
	if err != nil {
		t.Fatal(err)
	}
	caps.KubeVersion = *kv
	caps.APIVersions = append(slices.Clone(caps.APIVersions), apiVersions...)
	vals, err := chartutil.ToRenderValues(ch, values,
		chartutil.ReleaseOptions{Name: releaseName, Namespace: releaseNamespace, IsInstall: true}, caps)
	if err != nil {
		return nil, fmt.Errorf("values: %w", err)
	}
	return engine.Engine{Strict: true}.Render(ch, vals)
}

// find returns the rendered objects of a kind.
func find(objs []*unstructured.Unstructured, kind string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == kind {
			out = append(out, o)
		}
	}
	return out
}

// one returns the only object of a kind and name.
func one(t *testing.T, objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	t.Fatalf("no %s %s rendered", kind, name)
	return nil
}

func TestDefaultRender(t *testing.T) {
	objs := render(t, nil)
	seen := map[string]bool{}
	var kinds []string
	for _, o := range objs {
		key := fmt.Sprintf("%s/%s/%s", o.GetKind(), o.GetNamespace(), o.GetName())
		if seen[key] {
			t.Errorf("%s rendered twice", key)
		}
		seen[key] = true
		kinds = append(kinds, o.GetKind())
		if o.GetLabels()["app.kubernetes.io/instance"] != releaseName {
			t.Errorf("%s lacks the instance label", key)
		}
	}
	sort.Strings(kinds)
	// No Secret: the manager creates the shared ones (a render cannot keep
	// a random value).
	want := []string{"ClusterRole", "ClusterRole", "ClusterRoleBinding", "ClusterRoleBinding",
		"CustomResourceDefinition", "Deployment", "Deployment", "NetworkPolicy", "NetworkPolicy",
		"PodDisruptionBudget", "PodDisruptionBudget", "Role", "Role", "RoleBinding", "RoleBinding",
		"Service", "Service", "Service", "Service", "ServiceAccount", "ServiceAccount"}
	if strings.Join(kinds, ",") != strings.Join(want, ",") {
		t.Errorf("kinds rendered:\n %v\nwant\n %v", kinds, want)
	}

	crd := one(t, objs, "CustomResourceDefinition", "agents.flint.dev")
	if crd.GetAnnotations()["helm.sh/resource-policy"] != "keep" {
		t.Errorf("CRD lacks helm.sh/resource-policy: keep; uninstall would delete every Agent")
	}
}

func TestCRDsCanBeLeftOut(t *testing.T) {
	objs := render(t, map[string]any{"crds": map[string]any{"install": false}})
	if crds := find(objs, "CustomResourceDefinition"); len(crds) != 0 {
		t.Errorf("crds.install=false still renders %d CRDs", len(crds))
	}
}

// TestLint runs the checks of `helm lint --strict` over the chart.
func TestLint(t *testing.T) {
	kv, err := chartutil.ParseKubeVersion(kubeVersion)
	if err != nil {
		t.Fatal(err)
	}
	linter := lint.AllWithKubeVersion(chartDir(t), nil, releaseNamespace, kv)
	for _, m := range linter.Messages {
		if m.Severity >= support.WarningSev {
			t.Errorf("helm lint: %s", m)
		}
	}
}
