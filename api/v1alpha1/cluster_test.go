package v1alpha1

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// TestCELRuleNamesSidecarPorts keeps the CEL rules, which cannot name a Go
// constant, in step with the cluster contract they repeat.
func TestCELRuleNamesSidecarPorts(t *testing.T) {
	for file, rule := range map[string]string{
		"agent_types.go": fmt.Sprintf(`rule="self != %d && self != %d"`, ServingPort, AdminPort),
		"pod_types.go":   fmt.Sprintf(`rule="self.all(k, !k.startsWith('%s') && k != '%s')"`, LabelPrefix, LabelManagedBy),
	} {
		src, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(src), rule) {
			t.Errorf("%s has no CEL rule %s: change the marker with the constants", file, rule)
		}
	}
}

func TestDesiredReplicasIsTheScaleWithinBounds(t *testing.T) {
	for _, tc := range []struct {
		min, max int32
		scale    *int32
		want     int32
	}{
		{0, 10, nil, 0},
		{2, 10, nil, 2},
		{0, 10, ptr[int32](4), 4},
		{0, 3, ptr[int32](7), 3},
		{2, 5, ptr[int32](0), 2},
	} {
		a := &Agent{}
		a.Spec.Scaling.MinReplicas, a.Spec.Scaling.MaxReplicas, a.Spec.Scaling.Replicas = &tc.min, &tc.max, tc.scale
		if got := DesiredReplicas(a); got != tc.want {
			t.Errorf("min %d max %d scale %v: got %d, want %d", tc.min, tc.max, tc.scale, got, tc.want)
		}
	}
}
