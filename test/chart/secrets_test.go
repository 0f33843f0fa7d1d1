package chart

import (
	"bytes"
	"reflect"
	"strings"
	"sync"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flint-dev/flint/internal/bootstrap"
	"github.com/flint-dev/flint/internal/testenv"
)

// TestRenderIsRepeatable: two renders of the same values are identical, so
// `helm template`, Argo CD and Flux see no drift and roll nothing.
func TestRenderIsRepeatable(t *testing.T) {
	a, b := render(t, nil), render(t, nil)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("two renders of the same values differ")
	}
	if s := find(a, "Secret"); len(s) != 0 {
		t.Errorf("the chart renders %d Secrets; the manager creates the shared ones", len(s))
	}
}

// managerSecretArgs are the Secrets the rendered manager creates at
// start-up, from its --*-secret flags, with their data keys.
func managerSecretArgs(t *testing.T, mgr *appsv1.Deployment) []bootstrap.Secret {
	t.Helper()
	var out []bootstrap.Secret
	apiKeysKey := bootstrap.APIKeysKey
	for _, a := range mgr.Spec.Template.Spec.Containers[0].Args {
		if v, ok := strings.CutPrefix(a, "--api-keys-secret-key="); ok {
			apiKeysKey = v
		}
	}
	for _, a := range mgr.Spec.Template.Spec.Containers[0].Args {
		flag, name, _ := strings.Cut(a, "=")
		switch flag {
		case "--control-token-secret", "--gateway-token-secret":
			out = append(out, bootstrap.Secret{Name: name, Key: bootstrap.TokenKey, Generate: bootstrap.Token})
		case "--session-key-secret":
			out = append(out, bootstrap.Secret{Name: name, Key: bootstrap.SessionKeysKey, Generate: bootstrap.SessionKeys})
		case "--api-keys-secret":
			out = append(out, bootstrap.Secret{Name: name, Key: apiKeysKey, Generate: bootstrap.APIKey})
		}
	}
	if len(out) != 4 {
		t.Fatalf("manager creates %d shared Secrets, want 4: %+v", len(out), out)
	}
	return out
}

// asManager is a client that acts as the rendered manager's ServiceAccount,
// so what it does proves the chart's RBAC is enough.
func asManager(t *testing.T, env *testenv.Env) client.Client {
	t.Helper()
	cfg := rest.CopyConfig(env.Config)
	cfg.Impersonate = rest.ImpersonationConfig{
		UserName: "system:serviceaccount:" + releaseNamespace + ":rel-flint-manager",
		Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:" + releaseNamespace, "system:authenticated"},
	}
	c, err := client.New(cfg, client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// checkSecretsStayPut runs after the chart is applied: the manager (as its
// ServiceAccount, with the chart's RBAC) creates the shared Secrets, three
// replicas at once agree on one value each, the gateway mounts exactly
// those, and an upgrade with other values followed by a manager restart
// changes none of them.
func checkSecretsStayPut(t *testing.T, env *testenv.Env, apply func([]any)) {
	ctx := t.Context()
	objs := render(t, nil)
	mgr := convert[appsv1.Deployment](t, one(t, objs, "Deployment", "rel-flint-manager"))
	specs := managerSecretArgs(t, mgr)
	c := asManager(t, env)
	labels := map[string]string{"app.kubernetes.io/part-of": "flint"}

	first := map[string][]byte{}
	for _, s := range specs {
		var mu sync.Mutex
		var values [][]byte
		var wg sync.WaitGroup
		for range 3 { // manager replicas starting together
			wg.Go(func() {
				v, err := bootstrap.Ensure(ctx, c, releaseNamespace, s, labels)
				if err != nil {
					t.Errorf("ensure %s: %v", s.Name, err)
					return
				}
				mu.Lock()
				values = append(values, v)
				mu.Unlock()
			})
		}
		wg.Wait()
		for _, v := range values[1:] {
			if !bytes.Equal(v, values[0]) {
				t.Errorf("manager replicas disagree on %s", s.Name)
			}
		}
		first[s.Name] = values[0]
	}
	if t.Failed() {
		return
	}
	if err := c.List(ctx, &corev1.SecretList{}, client.InNamespace(releaseNamespace)); err == nil {
		t.Error("the manager may list Secrets; it should read only its own by name")
	}

	gw := convert[appsv1.Deployment](t, one(t, objs, "Deployment", "rel-flint-gateway"))
	var mounted []string
	for _, v := range gw.Spec.Template.Spec.Volumes {
		if v.Secret != nil {
			mounted = append(mounted, v.Secret.SecretName)
		}
	}
	for _, s := range specs {
		if !strings.Contains(strings.Join(mounted, ","), s.Name) {
			t.Errorf("the gateway does not mount %s (mounts %v)", s.Name, mounted)
		}
	}

	// An upgrade with other values, then a manager restart: nothing changes.
	versions := map[string]string{}
	for _, s := range specs {
		var got corev1.Secret
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: releaseNamespace, Name: s.Name}, &got); err != nil {
			t.Fatal(err)
		}
		versions[s.Name] = got.ResourceVersion
	}
	apply([]any{map[string]any{"gateway": map[string]any{"replicas": 3, "drainDelay": "10s"}}})
	for _, s := range specs {
		v, err := bootstrap.Ensure(ctx, c, releaseNamespace, s, labels)
		if err != nil {
			t.Fatal(err)
		}
		var got corev1.Secret
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: releaseNamespace, Name: s.Name}, &got); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(v, first[s.Name]) || !bytes.Equal(got.Data[s.Key], first[s.Name]) || got.ResourceVersion != versions[s.Name] {
			t.Errorf("%s changed across an upgrade and a manager restart", s.Name)
		}
	}

	// A Secret the operator brings is used as it is; one without the key
	// is an error that says what to do, and is left alone.
	own := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: releaseNamespace, Name: "rel-flint-gateway-token-own"},
		Data: map[string][]byte{"other": []byte("x")}}
	if err := env.Client.Create(ctx, own); err != nil {
		t.Fatal(err)
	}
	_, err := bootstrap.Ensure(ctx, env.Client, releaseNamespace,
		bootstrap.Secret{Name: own.Name, Key: bootstrap.TokenKey, Generate: bootstrap.Token}, labels)
	if err == nil || !strings.Contains(err.Error(), `no "token" value`) {
		t.Errorf("a Secret without its key: %v", err)
	}
}
