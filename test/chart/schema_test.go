package chart

import (
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
)

// TestSchemaRefusesMistakes: values.schema.json makes a typo or a wrong
// type fail the render (helm install, upgrade and template validate the
// same way) with the path of the value.
func TestSchemaRefusesMistakes(t *testing.T) {
	for _, tc := range []struct {
		values map[string]any
		want   []string // in the error
	}{
		{map[string]any{"gateway": map[string]any{"replica": 5}}, []string{"/gateway", "'replica' not allowed"}},
		{map[string]any{"gateway": map[string]any{"replicas": "two"}}, []string{"/gateway/replicas"}},
		{map[string]any{"manager": map[string]any{"sidecar": map[string]any{"drainDelay": "5"}}}, []string{"/manager/sidecar/drainDelay"}},
		{map[string]any{"gateway": map[string]any{"logLevel": "verbose"}}, []string{"/gateway/logLevel"}},
		{map[string]any{"gateway": map[string]any{"service": map[string]any{"type": "Ingress"}}}, []string{"/gateway/service/type"}},
		{map[string]any{"metrics": map[string]any{"serviceMonitor": map[string]any{"enable": true}}}, []string{"/metrics/serviceMonitor", "'enable' not allowed"}},
		{map[string]any{"watchNamespaces": "team-a"}, []string{"/watchNamespaces"}},
		{map[string]any{"gateway": map[string]any{"port": 70000}}, []string{"/gateway/port"}},
	} {
		_, err := renderFiles(t, tc.values)
		if err == nil {
			t.Errorf("%v rendered", tc.values)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%v: error does not name %q:\n%v", tc.values, w, err)
			}
		}
	}
}

// TestLintStrictRefusesTypo: `helm lint --strict` with a mistyped value
// reports it as an error.
func TestLintStrictRefusesTypo(t *testing.T) {
	kv, err := chartutil.ParseKubeVersion(kubeVersion)
	if err != nil {
		t.Fatal(err)
	}
	linter := lint.AllWithKubeVersion(chartDir(t), map[string]any{"gateway": map[string]any{"replica": 5}}, releaseNamespace, kv)
	found := false
	for _, m := range linter.Messages {
		found = found || (m.Severity == support.ErrorSev && strings.Contains(m.Err.Error(), "replica"))
	}
	if !found {
		t.Errorf("helm lint accepted gateway.replica: %v", linter.Messages)
	}
}
