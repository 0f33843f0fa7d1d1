package cli

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flint-dev/flint/internal/reload"
	"github.com/flint-dev/flint/internal/testenv"
)

// TestManagerFollowsItsTokenSecrets: the manager reads the control and
// gateway tokens through the API (it cannot mount Secrets its own start
// creates) and follows them, so a rotation written to the Secrets reaches
// it within reload.Interval, with no restart.
func TestManagerFollowsItsTokenSecrets(t *testing.T) {
	t.Parallel()
	env := testenv.Start(t, testenv.Options{})
	ns := env.Namespace(t)
	ctx := context.Background()
	s := managerSecrets{Namespace: ns, ControlToken: "control", GatewayToken: "gateway"}
	if err := s.ensure(ctx, env.Config, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	next := map[string]string{}
	for name, tokens := range map[string]func() string{
		"control": func() string { return s.controlToken.Get().Presented() },
		"gateway": func() string { return s.gatewayToken.Get().Presented() },
	} {
		var sec corev1.Secret
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &sec); err != nil {
			t.Fatal(err)
		}
		created := strings.TrimSpace(string(sec.Data["token"]))
		if got := tokens(); got != created {
			t.Fatalf("%s: the manager presents %q, the Secret holds %q", name, got, created)
		}
		// The swap step of a rotation: the new token first, the old kept.
		next[name] = "rotated-" + name + "-token-0123456789"
		sec.Data["token"] = []byte(next[name] + "\n" + created + "\n")
		if err := env.Client.Update(ctx, &sec); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Await(t, reload.Interval+5*time.Second, "the manager presents the rotated tokens", func() (bool, string) {
		c, g := s.controlToken.Get().Presented(), s.gatewayToken.Get().Presented()
		return c == next["control"] && g == next["gateway"], "control " + c + ", gateway " + g
	})
	if n := len(s.gatewayToken.Get()); n != 2 {
		t.Errorf("the gateway token has %d lines, want both (sidecars must accept the old one until it is removed)", n)
	}
}
