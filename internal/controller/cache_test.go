package controller

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The caches keep no managedFields: nothing reads them, and with thousands
// of agents they are a large share of the manager's and gateways' memory
// (docs/scale.md).
func TestCachesDropManagedFields(t *testing.T) {
	opts := CacheOptions(nil)
	if opts.DefaultTransform == nil {
		t.Fatal("CacheOptions has no DefaultTransform")
	}
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "a", Labels: map[string]string{"k": "v"},
		ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "flint-manager", Operation: metav1.ManagedFieldsOperationApply}}}}
	out, err := opts.DefaultTransform(d)
	if err != nil {
		t.Fatal(err)
	}
	got := out.(*appsv1.Deployment)
	if len(got.ManagedFields) != 0 || got.Labels["k"] != "v" || got.Name != "a" {
		t.Errorf("transformed Deployment: managedFields %v, labels %v, name %q; want no managedFields, the rest kept",
			got.ManagedFields, got.Labels, got.Name)
	}
}
