package controller

import (
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flint-dev/flint/api/v1alpha1"
)

// CacheOptions restricts the manager's caches to what Flint manages:
// Deployments, Services, Pods and EndpointSlices carrying the managed-by
// label (EndpointSlices inherit it from their Service), without their
// managedFields. In a shared cluster this keeps every other workload out of
// the manager's memory. namespaces, when not empty, limits every cache to
// those namespaces. The gateway's cache (Agents and EndpointSlices) is
// built from the same options.
func CacheOptions(namespaces []string) cache.Options {
	managed := labels.SelectorFromSet(labels.Set{v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue})
	opts := cache.Options{
		// Nothing reads managedFields (writes are applied or patched without
		// them); they are often a third of an object's size, for every
		// Agent, Deployment, Service and EndpointSlice in memory.
		DefaultTransform: cache.TransformStripManagedFields(),
		ByObject: map[client.Object]cache.ByObject{
			&appsv1.Deployment{}:         {Label: managed, Transform: trimDeployment},
			&corev1.Service{}:            {Label: managed},
			&discoveryv1.EndpointSlice{}: {Label: managed},
			&corev1.Pod{}:                {Label: managed, Transform: trimPod},
		},
	}
	if len(namespaces) > 0 {
		opts.DefaultNamespaces = map[string]cache.Config{}
		for _, ns := range namespaces {
			opts.DefaultNamespaces[ns] = cache.Config{}
		}
	}
	return opts
}

// trimDeployment drops the pod template of a cached Deployment: the
// manager reads a Deployment's identity, generation and status (rollout,
// conditions, replica counts) and applies the template it builds itself,
// never one read back. The template (two containers with env, probes,
// security context, volumes) is most of the object: at 2,000 agents it was
// the largest share of the manager's informer memory (docs/scale.md).
func trimDeployment(obj any) (any, error) {
	d, ok := obj.(*appsv1.Deployment)
	if !ok {
		return obj, nil // a tombstone: passed on as it is
	}
	d.Spec.Template = corev1.PodTemplateSpec{}
	d.ManagedFields = nil
	return d, nil
}

// trimPod keeps only what the manager reads from a pod (labels, deletion,
// status). The spec goes: it is most of a pod's size, and its env may hold
// literal secrets the manager has no reason to keep in memory.
func trimPod(obj any) (any, error) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil // a tombstone: passed on as it is
	}
	pod.Spec = corev1.PodSpec{NodeName: pod.Spec.NodeName}
	pod.ManagedFields = nil
	pod.Annotations = nil
	return pod, nil
}
