package cli

import (
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flint-dev/flint/api/v1alpha1"
	"github.com/flint-dev/flint/internal/testenv"
)

// TestAgentSelectorSplitsInstallations: the informer cache the manager and
// the gateway build sees only the Agents of its -agent-selector and
// -namespaces, so two installations never act on one Agent.
func TestAgentSelectorSplitsInstallations(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	nsA, nsB := env.Namespace(t), env.Namespace(t)
	ctx := t.Context()
	for _, a := range []struct{ ns, name, class string }{
		{nsA, "mine", "a"}, {nsA, "theirs", "b"}, {nsA, "unlabelled", ""}, {nsB, "elsewhere", "a"},
	} {
		agent := &v1alpha1.Agent{ObjectMeta: metav1.ObjectMeta{Namespace: a.ns, Name: a.name}}
		if a.class != "" {
			agent.Labels = map[string]string{"flint.dev/class": a.class}
		}
		agent.Spec.Container.Image = "ghcr.io/example/echo:1.0"
		agent.Spec.Container.Port = 8080
		if err := env.Client.Create(ctx, agent); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		conn kubeConnection
		want int
	}{
		{kubeConnection{Namespaces: nsA + "," + nsB, AgentSelector: "flint.dev/class=a"}, 2},
		{kubeConnection{Namespaces: nsA, AgentSelector: "flint.dev/class=a"}, 1},
		{kubeConnection{Namespaces: nsA, AgentSelector: "flint.dev/class in (b)"}, 1},
		{kubeConnection{Namespaces: nsA}, 3},
	} {
		opts, err := tc.conn.cacheOptions()
		if err != nil {
			t.Fatal(err)
		}
		opts.Scheme = env.Scheme
		c, err := cache.New(env.Config, opts)
		if err != nil {
			t.Fatal(err)
		}
		cctx, cancel := contextWithTimeout(t, 30*time.Second)
		go c.Start(cctx)
		if !c.WaitForCacheSync(cctx) {
			t.Fatal("cache did not sync")
		}
		var list v1alpha1.AgentList
		// The first List starts the Agent informer and waits for it to sync.
		err = c.List(cctx, &list, client.InNamespace(nsA))
		if err == nil && tc.conn.Namespaces != nsA {
			var more v1alpha1.AgentList
			err = c.List(cctx, &more, client.InNamespace(nsB))
			list.Items = append(list.Items, more.Items...)
		}
		cancel()
		if err != nil {
			t.Fatalf("%+v: %v", tc.conn, err)
		}
		if len(list.Items) != tc.want {
			var names []string
			for _, a := range list.Items {
				names = append(names, a.Namespace+"/"+a.Name)
			}
			t.Errorf("%+v sees %v, want %d Agents", tc.conn, names, tc.want)
		}
	}
	if _, err := (kubeConnection{AgentSelector: "a in"}).cacheOptions(); err == nil {
		t.Error("a malformed -agent-selector was accepted")
	}
}

func contextWithTimeout(t *testing.T, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(t.Context(), d)
}
