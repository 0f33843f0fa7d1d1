package kube

import (
	"context"
	"fmt"
	"slices"
	"strings"

	discoveryv1 "k8s.io/api/discovery/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flint-dev/flint/api/v1alpha1"
	"github.com/flint-dev/flint/internal/platform"
)

// ReadyEndpointsOnce reads an agent's ready replicas from its Service's
// EndpointSlices once, through c, by the rule the platform's informers
// apply (endpointsOf, union): ports by name, terminating and not yet ready
// endpoints left out, a replica listed by several slices counted once. It
// is for one-shot readers such as `flint describe -kube`, which have no
// informers and do not probe pending pods; the gateway's view may include
// a pod the kubelet has not yet marked ready.
func ReadyEndpointsOnce(ctx context.Context, c client.Reader, key platform.AgentKey) ([]platform.Endpoint, error) {
	var list discoveryv1.EndpointSliceList
	if err := c.List(ctx, &list, client.InNamespace(key.Namespace),
		client.MatchingLabels{discoveryv1.LabelServiceName: key.Name, v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue}); err != nil {
		return nil, fmt.Errorf("list EndpointSlices of %s: %w", key, err)
	}
	// The same order as publishLocked: by sliceID, so a dual-stack replica
	// is reached on its IPv4 address.
	slices.SortFunc(list.Items, func(a, b discoveryv1.EndpointSlice) int {
		return strings.Compare(sliceID(&a), sliceID(&b))
	})
	var ready [][]platform.Endpoint
	for i := range list.Items {
		s := &list.Items[i]
		if k, ok := sliceAgent(s); !ok || k != key {
			continue
		}
		ready = append(ready, endpointsOf(s, "").ready)
	}
	return union(ready...), nil
}
