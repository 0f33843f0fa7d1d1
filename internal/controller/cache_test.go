package controller

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
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

// The Deployment cache keeps no pod template: the reconciler builds the
// template it applies and reads only identity, generation and status back.
func TestDeploymentCacheDropsTemplate(t *testing.T) {
	var tr func(any) (any, error)
	for obj, o := range CacheOptions(nil).ByObject {
		if _, ok := obj.(*appsv1.Deployment); ok {
			tr = o.Transform
		}
	}
	if tr == nil {
		t.Fatal("no Transform for Deployments")
	}
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "a", Generation: 3, Labels: map[string]string{"k": "v"},
		ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "flint-manager"}}}}
	d.Spec.Template.Spec.Containers = []corev1.Container{{Name: "agent", Image: "x"}}
	d.Status = appsv1.DeploymentStatus{ObservedGeneration: 3, Replicas: 2, ReadyReplicas: 1}
	out, err := tr(d)
	if err != nil {
		t.Fatal(err)
	}
	got := out.(*appsv1.Deployment)
	if len(got.Spec.Template.Spec.Containers) != 0 || len(got.ManagedFields) != 0 {
		t.Errorf("cached Deployment keeps its template %+v or managedFields %v", got.Spec.Template, got.ManagedFields)
	}
	if got.Name != "a" || got.Generation != 3 || got.Labels["k"] != "v" || got.Status.ReadyReplicas != 1 || got.Status.ObservedGeneration != 3 {
		t.Errorf("cached Deployment lost what the reconciler reads: %+v", got)
	}
}
