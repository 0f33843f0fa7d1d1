package crd

import (
	"errors"
	"slices"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/flint-dev/flint/api/v1alpha1"
)

// TestInvalidAgentsRefused sends invalid Agents as unstructured objects (so
// values the Go types cannot hold, like "abc" durations, reach the server)
// and expects the API server's CEL rules to refuse each one on the right
// field with a message that says what to fix. Where Go's Validate can see
// the same mistake, it must report the same message on the same field:
// local mode and the cluster refuse the same Agents the same way.
func TestInvalidAgentsRefused(t *testing.T) {
	ns := env.Namespace(t)
	for _, tc := range []struct {
		name     string
		mutate   func(obj map[string]any)
		field    string
		msg      string
		goParity bool // Validate(false) reports msg on field too
	}{
		{"min above max", set("spec.scaling.minReplicas", 5, "spec.scaling.maxReplicas", 2),
			"spec.scaling.minReplicas", "minReplicas (5) must not exceed maxReplicas (2)", true},
		{"target above concurrency", set("spec.concurrency", 5, "spec.scaling.target", 8),
			"spec.scaling.target", "target (8) must not exceed concurrency (5): replicas can never hold more", true},
		{"stable window too short", set("spec.scaling.stableWindow", "2s"),
			"spec.scaling.stableWindow", "stableWindow must be between 6s and 1h0m0s", true},
		{"stable window too long", set("spec.scaling.stableWindow", "61m"),
			"spec.scaling.stableWindow", "stableWindow must be between 6s and 1h0m0s", true},
		{"stable window not a duration", set("spec.scaling.stableWindow", "a minute"),
			"spec.scaling.stableWindow", "stableWindow must be a duration such as 60s, 5m or 1h", false},
		{"stable window without unit", set("spec.scaling.stableWindow", "60"),
			"spec.scaling.stableWindow", "stableWindow must be a duration", false},
		{"scale to zero after zero", set("spec.scaling.scaleToZeroAfter", "0s"),
			"spec.scaling.scaleToZeroAfter", "scaleToZeroAfter must be positive", true},
		{"scale to zero after negative", set("spec.scaling.scaleToZeroAfter", "-30s"),
			"spec.scaling.scaleToZeroAfter", "scaleToZeroAfter must be positive", true},
		{"request timeout zero", set("spec.timeouts.request", "0"),
			"spec.timeouts.request", "request timeout must be positive", true},
		{"cold start timeout negative", set("spec.timeouts.coldStart", "-1m"),
			"spec.timeouts.coldStart", "coldStart timeout must be positive", true},
		{"cold start timeout garbage", set("spec.timeouts.coldStart", "soon"),
			"spec.timeouts.coldStart", "coldStart timeout must be a duration such as 60s or 2m", false},
		{"port zero", set("spec.container.port", 0),
			"spec.container.port", "set port to the TCP port the agent listens on (1-65535)", true},
		{"port too high", set("spec.container.port", 65536),
			"spec.container.port", "set port to the TCP port the agent listens on (1-65535)", true},
		{"no image", del("spec.container.image"),
			"spec.container.image", "Required value: set image: the container image the agent runs on Kubernetes", true},
		{"a command is no image", set("spec.container.image", "", "spec.container.command", []any{"./agent"}),
			"spec.container.image", "set image: the container image the agent runs on Kubernetes", true},
		{"sidecar port", set("spec.container.port", 8022),
			"spec.container.port", "ports 8012 and 8022 belong to the flint-proxy sidecar", true},
		{"reserved volume name", set("spec.pod.volumes", []any{map[string]any{"name": "flint-bin", "emptyDir": map[string]any{}}}),
			"spec.pod.volumes", "volume names starting with flint- are used by Flint", false},
		{"reserved pod label", set("spec.pod.labels", map[string]any{"flint.dev/agent": "x"}),
			"spec.pod.labels", "pod label keys under flint.dev/ and app.kubernetes.io/managed-by are set by Flint", true},
		{"bad protocol", set("spec.protocol", "grpc"),
			"spec.protocol", `Unsupported value: "grpc": supported values: "http", "mcp", "a2a"`, true},
		{"negative concurrency", set("spec.concurrency", -1),
			"spec.concurrency", "concurrency must be 0 (unlimited) or a positive cap", true},
		{"negative min replicas", set("spec.scaling.minReplicas", -1),
			"spec.scaling.minReplicas", "minReplicas must not be negative", true},
		{"zero max replicas", set("spec.scaling.maxReplicas", 0),
			"spec.scaling.maxReplicas", "maxReplicas must be at least 1", true},
		{"zero target", set("spec.scaling.target", 0),
			"spec.scaling.target", "target must be at least 1", true},
		{"name starting with a digit", set("metadata.name", "1echo"),
			"<nil>", "metadata.name must be a DNS-1035 label", false},
		{"name longer than a Service name", set("metadata.name", strings.Repeat("a", 64)),
			"<nil>", "metadata.name must be a DNS-1035 label", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			obj := map[string]any{
				"apiVersion": v1alpha1.GroupVersion.String(),
				"kind":       "Agent",
				"metadata":   map[string]any{"name": "bad", "namespace": ns},
				"spec": map[string]any{
					"container": map[string]any{"image": "ghcr.io/example/echo:1.0", "port": int64(8080)},
				},
			}
			tc.mutate(obj)
			if tc.goParity {
				checkGoValidation(t, obj, tc.field, tc.msg)
			}
			err := env.Client.Create(t.Context(), &unstructured.Unstructured{Object: obj})
			if !apierrors.IsInvalid(err) {
				t.Fatalf("create: want Invalid, got %v", err)
			}
			var status apierrors.APIStatus
			if !errors.As(err, &status) || status.Status().Details == nil {
				t.Fatalf("no details in %v", err)
			}
			// One mistake, one error: the one naming the fix. (An enum
			// violation also stops the CEL rules; the server says so.)
			causes := slices.DeleteFunc(status.Status().Details.Causes, func(c metav1.StatusCause) bool {
				return strings.Contains(c.Message, "some validation rules were not checked")
			})
			for _, c := range causes {
				if fieldOf(c.Field) == tc.field && strings.Contains(c.Message, tc.msg) {
					if len(causes) > 1 {
						t.Errorf("one mistake, %d errors: %v", len(causes), err)
					}
					return
				}
			}
			t.Errorf("no cause on %s containing %q in:\n%v", tc.field, tc.msg, err)
		})
	}
}

// checkGoValidation converts obj to an Agent and expects Validate(false)
// to report msg on field.
func checkGoValidation(t *testing.T, obj map[string]any, field, msg string) {
	t.Helper()
	var a v1alpha1.Agent
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj, &a); err != nil {
		t.Fatalf("convert for Go validation: %v", err)
	}
	errs := a.Validate(false)
	for _, e := range errs {
		if e.Field == field && strings.Contains(e.Error(), msg) {
			return
		}
	}
	t.Errorf("Go validation does not report %q on %s; it reports %v", msg, field, errs)
}

// fieldOf normalizes an empty cause field (errors on the object itself).
func fieldOf(f string) string {
	if f == "" {
		return "<nil>"
	}
	return f
}

// set returns a mutation that sets dotted paths to values, in pairs.
func set(pathsAndValues ...any) func(map[string]any) {
	return func(obj map[string]any) {
		for i := 0; i < len(pathsAndValues); i += 2 {
			path := strings.Split(pathsAndValues[i].(string), ".")
			v := pathsAndValues[i+1]
			if n, ok := v.(int); ok {
				v = int64(n) // unstructured holds int64
			}
			if err := unstructured.SetNestedField(obj, v, path...); err != nil {
				panic(err)
			}
		}
	}
}

// del returns a mutation that removes a dotted path.
func del(path string) func(map[string]any) {
	return func(obj map[string]any) { unstructured.RemoveNestedField(obj, strings.Split(path, ".")...) }
}
