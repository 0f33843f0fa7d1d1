package controller

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flint-dev/flint/api/v1alpha1"
	"github.com/flint-dev/flint/internal/secret"
	"github.com/flint-dev/flint/internal/testenv"
)

// fixedTokens is a token source that never changes.
func fixedTokens(tokens ...string) func() secret.Tokens {
	return func() secret.Tokens { return tokens }
}

// TestGatewayTokenRotationKeepsThePodTemplate: a new token does not roll
// the agent's pods; the sidecar follows its mounted copy, which the
// manager updates (TestGatewayTokenRotationReachesEveryAgentSecret).
func TestGatewayTokenRotationKeepsThePodTemplate(t *testing.T) {
	a := testAgent("ns", "guarded")
	tokens := secret.Tokens{testGatewayToken}
	cfg := testConfig()
	cfg.UseGatewayToken(func() secret.Tokens { return tokens })
	before, err := render(cfg, a)
	if err != nil {
		t.Fatal(err)
	}
	tokens = secret.Tokens{testGatewayToken, testGatewayToken + "-rotated"}
	if after, _ := render(cfg, a); !equality.Semantic.DeepEqual(before, after) {
		t.Error("a rotated token changes the pod template: every agent would roll")
	}
	for k := range before.Annotations {
		if k == "flint.dev/gateway-token-hash" {
			t.Error("the pod template still carries the token's hash")
		}
	}
}

// TestGatewayTokenRotationReachesEveryAgentSecret: when the manager's token
// changes (a rotation's added line), the follower copies it to every
// agent's Secret without waiting for the agents' next reconcile; the
// Deployment is not touched, so no pod rolls.
func TestGatewayTokenRotationReachesEveryAgentSecret(t *testing.T) {
	t.Parallel()
	env := cluster(t)
	ns := env.Namespace(t)
	var agents []*v1alpha1.Agent
	for _, name := range []string{"one", "two"} {
		agents = append(agents, createAgent(t, env, ns, name, func(*v1alpha1.Agent) {}))
	}
	var tokens atomic.Pointer[secret.Tokens]
	tokens.Store(&secret.Tokens{testGatewayToken})
	cfg := testConfig()
	cfg.UseGatewayToken(func() secret.Tokens { return *tokens.Load() })
	// Only this test's namespace: other tests' agents share the API server.
	r, err := NewReconciler(client.NewNamespacedClient(env.Client, ns), cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := r.applyGatewaySecrets(ctx); err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() { done <- gatewayTokenFollower{r: r, every: 20 * time.Millisecond}.Start(ctx) }()

	rotated := secret.Tokens{testGatewayToken, testGatewayToken + "-next"}
	tokens.Store(&rotated)
	for _, a := range agents {
		testenv.Eventually(t, settle, func() error {
			var s corev1.Secret
			if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: GatewayTokenSecretName(a.Name)}, &s); err != nil {
				return err
			}
			if got, want := string(s.Data["token"]), testGatewayToken+"\n"+testGatewayToken+"-next\n"; got != want {
				return fmt.Errorf("agent %s's Secret holds %q, want %q", a.Name, got, want)
			}
			return nil
		})
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("follower: %v", err)
	}
}
