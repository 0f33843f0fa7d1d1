package controller

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/flint-dev/flint/api/v1alpha1"
)

// Bypass protection. With -gateway-token-file, every sidecar requires the
// token the gateways present (internal/gatewaytoken) and answers 403 to a
// request that reached it any other way. The token is followed, not read
// once: a rotation (two tokens, one per line, while it spreads; see
// docs/operations.md) is copied to every agent's Secret within
// reload.Interval, and sidecars re-read their mounted copy, so no pod
// restarts and none refuses a request the gateways send. The manager copies the token into
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
func gatewayTokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])[:16]
}

func desiredGatewaySecret(a *v1alpha1.Agent, token string) *corev1ac.SecretApplyConfiguration {
	return corev1ac.Secret(GatewayTokenSecretName(a.Name), a.Namespace).
		WithLabels(labelsFor(a)).
		WithOwnerReferences(ownerReference(a)).
		WithType(corev1.SecretTypeOpaque).
		WithData(map[string][]byte{gatewayTokenKey: []byte(token + "\n")})
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
	if r.cfg.gatewayToken == nil {
		return nil
	}
	token := r.cfg.gatewayToken()
	nn := types.NamespacedName{Namespace: a.Namespace, Name: GatewayTokenSecretName(a.Name)}
	desired := desiredGatewaySecret(a, token)
	hash := gatewayTokenHash(token) + "/" + string(a.UID)
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

// gatewayTokenFollower copies a changed gateway token to every agent's
// Secret at once, rather than at each agent's next reconcile. It runs on
// the leader only (a manager.Runnable needs leader election by default).
type gatewayTokenFollower struct {
	r     *Reconciler
	every time.Duration // reload.Interval in the manager; shorter in tests
}

func (f gatewayTokenFollower) Start(ctx context.Context) error {
	t := time.NewTicker(f.every)
	defer t.Stop()
	// The first tick goes over every agent: a token that changed before
	// this started is caught too, and the apply memo skips the Secrets
	// the start-up reconciles have just written.
	last := ""
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if now := gatewayTokenHash(f.r.cfg.gatewayToken()); now != last {
			if err := f.r.applyGatewaySecrets(ctx); err != nil {
				log.FromContext(ctx).Error(err, "gateway token changed; some agents' Secrets are not updated yet (retried in 10s)")
				continue
			}
			if last != "" {
				log.FromContext(ctx).Info("gateway token changed; every agent's Secret updated")
			}
			last = now
		}
	}
}

// applyGatewaySecrets applies every agent's token Secret.
func (r *Reconciler) applyGatewaySecrets(ctx context.Context) error {
	var agents v1alpha1.AgentList
	if err := r.client.List(ctx, &agents); err != nil {
		return fmt.Errorf("list agents: %w", err)
	}
	var errs []error
	for i := range agents.Items {
		a := agents.Items[i].DeepCopy()
		if !a.DeletionTimestamp.IsZero() {
			continue
		}
		a.Default()
		errs = append(errs, r.applyGatewaySecret(ctx, a))
	}
	return errors.Join(errs...)
}
