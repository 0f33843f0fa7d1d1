package kube

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/flint-dev/flint/api/v1alpha1"
	"github.com/flint-dev/flint/internal/controller"
	"github.com/flint-dev/flint/internal/testenv"
)

// One control plane with kube-controller-manager (EndpointSlices from
// pods, ReplicaSets from Deployments) and one manager running the
// reconciler and a Platform on its cache, as `flint manager` does, serve
// every test that needs them, each in a namespace of its own. They start on
// first use, so the unit tests run without them.
var shared struct {
	once     sync.Once
	err      error
	env      *testenv.Env
	mgr      manager.Manager
	platform *Platform
	stop     func()
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.stop != nil {
		shared.stop()
	}
	os.Exit(code)
}

// cluster returns the shared control plane, manager and platform.
func cluster(t *testing.T) (*testenv.Env, *Platform) {
	t.Helper()
	shared.once.Do(func() { shared.err = startShared() })
	if shared.err != nil {
		t.Fatalf("control plane: %v", shared.err)
	}
	return shared.env, shared.platform
}

func startShared() (err error) {
	env, err := testenv.New(testenv.Options{ControllerManager: true})
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = env.Stop()
		}
	}()
	logger := logr.FromSlogHandler(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctrl.SetLogger(logger)
	skip := true
	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{
		Scheme: env.Scheme, Logger: logger,
		Cache:                  controller.CacheOptions(nil),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Controller:             config.Controller{SkipNameValidation: &skip},
	})
	if err != nil {
		return fmt.Errorf("manager: %w", err)
	}
	rec, err := controller.NewReconciler(mgr.GetClient(), controller.DefaultConfig("test"), nil, nil)
	if err != nil {
		return err
	}
	if err := rec.SetupWithManager(mgr); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	p, err := New(ctx, mgr.GetCache(), mgr.GetClient(), DefaultConfig(), slog.New(slog.NewTextHandler(os.Stderr, nil)))
	if err != nil {
		cancel()
		return err
	}
	if err := mgr.Add(p); err != nil {
		cancel()
		return err
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	syncCtx, cancelSync := context.WithTimeout(ctx, time.Minute)
	defer cancelSync()
	if err := p.WaitForSync(syncCtx); err != nil {
		cancel()
		<-done
		return err
	}
	shared.env, shared.mgr, shared.platform = env, mgr, p
	shared.stop = func() {
		cancel()
		if err := <-done; err != nil {
			fmt.Fprintln(os.Stderr, "manager:", err)
		}
		if err := env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stop control plane:", err)
		}
	}
	return nil
}

// waitClosed waits for a ReadyEndpoints channel to be closed.
func waitClosed(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(30 * time.Second):
		t.Fatalf("waiters were not woken: %s", what)
	}
}

func createAgent(t *testing.T, env *testenv.Env, ns, name string, mutate func(*v1alpha1.Agent)) *v1alpha1.Agent {
	t.Helper()
	a := &v1alpha1.Agent{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	a.Spec.Container.Image = "example.com/echo:1"
	a.Spec.Container.Port = 8080
	if mutate != nil {
		mutate(a)
	}
	if err := env.Client.Create(context.Background(), a); err != nil {
		t.Fatalf("create agent: %v", err)
	}
	return a
}

// ensureNode creates a Node for pods to be bound to: the EndpointSlice
// controller skips pods whose node it cannot find.
func ensureNode(t *testing.T, env *testenv.Env, name string) {
	t.Helper()
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := env.Client.Create(context.Background(), node); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("create node: %v", err)
	}
}

func get(env *testenv.Env, ns, name string, obj client.Object) error {
	return env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, obj)
}

func ptr[T any](v T) *T { return &v }
