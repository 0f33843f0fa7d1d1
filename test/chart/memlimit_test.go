package chart

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// TestManagerGOMEMLIMITFollowsItsMemoryLimit: the manager's Go runtime is
// given the container's memory limit (downward API, in bytes) as its soft
// limit, and no GOMEMLIMIT without a limit (the node's allocatable memory
// would be no limit at all).
func TestManagerGOMEMLIMITFollowsItsMemoryLimit(t *testing.T) {
	memlimit := func(values map[string]any) *corev1.EnvVar {
		d := convert[appsv1.Deployment](t, one(t, render(t, values), "Deployment", "rel-flint-manager"))
		for _, c := range d.Spec.Template.Spec.Containers {
			for _, e := range c.Env {
				if c.Name == "manager" && e.Name == "GOMEMLIMIT" {
					return &e
				}
			}
		}
		return nil
	}
	e := memlimit(nil)
	if e == nil || e.ValueFrom == nil || e.ValueFrom.ResourceFieldRef == nil {
		t.Fatalf("default render: GOMEMLIMIT %+v, want it from the manager's memory limit", e)
	}
	if r := e.ValueFrom.ResourceFieldRef; r.ContainerName != "manager" || r.Resource != "limits.memory" || !r.Divisor.IsZero() {
		t.Errorf("GOMEMLIMIT from %+v, want limits.memory of container manager in bytes (no divisor)", r)
	}
	noLimit := map[string]any{"manager": map[string]any{"resources": map[string]any{"limits": nil}}} // null removes the default
	if e := memlimit(noLimit); e != nil {
		t.Errorf("no memory limit: GOMEMLIMIT %+v, want none", e)
	}
}
