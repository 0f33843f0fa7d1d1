package controller

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flint-dev/flint/api/v1alpha1"
)

// Bypass protection. With -gateway-token-file, every sidecar requires the
// token the gateways present (internal/gatewaytoken) and answers 403 to a
// request that reached it any other way. The manager copies the token into
// a Secret in each agent's namespace, owned by the Agent (so it goes with
// it), and mounts it into the sidecar: one Secret per agent rather than per
// namespace, because an owner reference per agent is what lets the garbage
// collector remove it, and server-side apply cannot share one object's
// owner list between agents.
const (
	gatewayTokenVolume = v1alpha1.ReservedPrefix + "gateway-token"
	gatewayTokenDir    = "/var/run/flint/gateway-token"
	gatewayTokenKey    = "token"
	// kindSecret names the Secret in the apply memo.
	kindSecret = "Secret"
	// secretRecheck is how often an unchanged Secret is applied again: the
	// manager does not watch Secrets (it would need to read every Secret in
	// the cluster), so this is how a deleted one comes back.
	secretRecheck = 5 * time.Minute
)

// GatewayTokenSecretName is the Secret holding an agent's copy of the
// gateway token.
func GatewayTokenSecretName(agent string) string { return agent + "-flint-gateway-token" }

// gatewayTokenHash identifies the token without revealing it.
func (c Config) gatewayTokenHash() string {
	sum := sha256.Sum256([]byte(c.gatewayToken))
	return hex.EncodeToString(sum[:])[:16]
}

func (c Config) desiredGatewaySecret(a *v1alpha1.Agent) *corev1ac.SecretApplyConfiguration {
	return corev1ac.Secret(GatewayTokenSecretName(a.Name), a.Namespace).
		WithLabels(labelsFor(a)).
		WithOwnerReferences(ownerReference(a)).
		WithType(corev1.SecretTypeOpaque).
		WithData(map[string][]byte{gatewayTokenKey: []byte(c.gatewayToken)})
}

// gatewayTokenVolumeSource mounts the agent's Secret, readable by the
// sidecar's user whatever it is (no UID is imposed).
func gatewayTokenVolumeSource(a *v1alpha1.Agent) *corev1ac.VolumeApplyConfiguration {
	return corev1ac.Volume().WithName(gatewayTokenVolume).
		WithSecret(corev1ac.SecretVolumeSource().WithSecretName(GatewayTokenSecretName(a.Name)).WithDefaultMode(0o444))
}

func gatewayTokenMount() *corev1ac.VolumeMountApplyConfiguration {
	return corev1ac.VolumeMount().WithName(gatewayTokenVolume).WithMountPath(gatewayTokenDir).WithReadOnly(true)
}

func gatewayTokenFile() string { return path.Join(gatewayTokenDir, gatewayTokenKey) }

// applyGatewaySecret applies the agent's token Secret when it changed or
// secretRecheck has passed since the last apply.
func (r *Reconciler) applyGatewaySecret(ctx context.Context, a *v1alpha1.Agent) error {
	if r.cfg.gatewayToken == "" {
		return nil
	}
	nn := types.NamespacedName{Namespace: a.Namespace, Name: GatewayTokenSecretName(a.Name)}
	desired := r.cfg.desiredGatewaySecret(a)
	hash := r.cfg.gatewayTokenHash() + "/" + string(a.UID)
	key := r.memo.key(kindSecret, types.NamespacedName{Namespace: a.Namespace, Name: a.Name})
	epoch := time.Now().Truncate(secretRecheck).String()
	if r.memo.upToDate(key, hash, "", epoch) {
		r.metrics.applies.WithLabelValues(kindSecret, "skipped").Inc()
		return nil
	}
	if err := r.client.Apply(ctx, desired, client.FieldOwner(FieldOwner), client.ForceOwnership); err != nil {
		r.metrics.applies.WithLabelValues(kindSecret, "error").Inc()
		return fmt.Errorf("apply Secret %s: %w (the manager needs get/create/patch on secrets for -gateway-token-file)", nn, err)
	}
	r.metrics.applies.WithLabelValues(kindSecret, "applied").Inc()
	r.memo.remember(key, appliedRecord{hash: hash, version: epoch})
	return nil
}
