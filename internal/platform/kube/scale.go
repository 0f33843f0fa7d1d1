package kube

import (
	"context"
	"fmt"
	"strconv"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flint-dev/flint/api/v1alpha1"
	"github.com/flint-dev/flint/internal/platform"
)

// Replicas implements platform.Platform: the replicas the agent asks for,
// as the manager applies them to its Deployment.
func (p *Platform) Replicas(key platform.AgentKey) int32 {
	a, ok := p.Agent(key)
	if !ok {
		return 0
	}
	return v1alpha1.DesiredReplicas(a)
}

// SetScale implements platform.Platform by patching the Agent's scale
// subresource, the same door `kubectl scale` uses. A merge patch of just
// the replica count needs no resourceVersion, so it never conflicts with a
// concurrent spec edit; the manager then copies the scale to the Deployment.
func (p *Platform) SetScale(ctx context.Context, key platform.AgentKey, n int32) error {
	if n < 0 {
		return fmt.Errorf("scale agent %s: negative replicas %d", key, n)
	}
	agent := &v1alpha1.Agent{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}}
	patch := client.RawPatch(types.MergePatchType, []byte(`{"spec":{"replicas":`+strconv.Itoa(int(n))+`}}`))
	if err := p.client.SubResource("scale").Patch(ctx, agent, patch, client.WithSubResourceBody(&autoscalingv1.Scale{})); err != nil {
		return fmt.Errorf("scale agent %s to %d: %w", key, n, err)
	}
	p.storeScale(key, n)
	return nil
}
