package controller

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/flint-dev/flint/api/v1alpha1"
	"github.com/flint-dev/flint/internal/testenv"
)

// One control plane (with kube-controller-manager, for ReplicaSets, Pods
// and garbage collection) and one running manager serve every test that
// needs them; each test works in a namespace of its own. They start on
// first use, so the unit tests run without them.
var shared struct {
	once sync.Once
	err  error
	env  *testenv.Env
	stop func()
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.stop != nil {
		shared.stop()
	}
	os.Exit(code)
}

// cluster returns the shared control plane with the manager running.
func cluster(t *testing.T) *testenv.Env {
	t.Helper()
	shared.once.Do(func() {
		begin := time.Now()
		env, err := testenv.New(testenv.Options{ControllerManager: true})
		if err != nil {
			shared.err = err
			return
		}
		stopManager, err := startManager(env)
		if err != nil {
			shared.err = err
			_ = env.Stop()
			return
		}
		shared.env = env
		shared.stop = func() {
			stopManager()
			if err := env.Stop(); err != nil {
				fmt.Fprintln(os.Stderr, "stop control plane:", err)
			}
		}
		t.Logf("control plane and manager up in %s", time.Since(begin).Round(time.Millisecond))
	})
	if shared.err != nil {
		t.Fatalf("control plane: %v", shared.err)
	}
	return shared.env
}

// ownReconciler labels an Agent that the shared manager leaves alone.
const ownReconciler = "test.flint.dev/own-reconciler"

var notOwnReconciler = func() labels.Requirement {
	r, err := labels.NewRequirement(ownReconciler, selection.DoesNotExist, nil)
	if err != nil {
		panic(err)
	}
	return *r
}()

// startManager runs the reconciler as `flint manager` does, without leader
// election or servers, and returns a function that stops it and waits.
func startManager(env *testenv.Env) (stop func(), err error) {
	logger := logr.FromSlogHandler(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctrl.SetLogger(logger)
	skip := true
	// Agents labelled ownReconciler are left to the test that made them,
	// which reconciles them with a configuration of its own (sidecar TLS):
	// the shared manager, with TLS off, would race it on their Service.
	cacheOpts := CacheOptions(nil)
	cacheOpts.ByObject[&v1alpha1.Agent{}] = cache.ByObject{Label: labels.NewSelector().Add(notOwnReconciler)}
	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{
		Scheme:                 env.Scheme,
		Logger:                 logger,
		Cache:                  cacheOpts,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Controller:             config.Controller{SkipNameValidation: &skip},
	})
	if err != nil {
		return nil, fmt.Errorf("manager: %w", err)
	}
	rec, err := NewReconciler(mgr.GetClient(), testConfig(), mgr.GetEventRecorder("flint-manager"), nil)
	if err != nil {
		return nil, err
	}
	if err := rec.SetupWithManager(mgr); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			fmt.Fprintln(os.Stderr, "manager:", err)
		}
	}, nil
}

// createAgent creates a valid agent in ns, after mutate.
func createAgent(t *testing.T, env *testenv.Env, ns, name string, mutate func(*v1alpha1.Agent)) *v1alpha1.Agent {
	t.Helper()
	a := &v1alpha1.Agent{}
	a.Namespace, a.Name = ns, name
	a.Spec.Container.Image = "example.com/echo:1"
	a.Spec.Container.Port = 8080
	a.Spec.Concurrency = 10
	if mutate != nil {
		mutate(a)
	}
	if err := env.Client.Create(context.Background(), a); err != nil {
		t.Fatalf("create agent: %v", err)
	}
	return a
}

// get reads obj fresh from the API server into obj.
func get(env *testenv.Env, ns, name string, obj client.Object) error {
	return env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, obj)
}

// gone reports nil once the object no longer exists.
func gone(env *testenv.Env, ns, name string, obj client.Object) error {
	err := get(env, ns, name, obj)
	switch {
	case apierrors.IsNotFound(err):
		return nil
	case err != nil:
		return err
	default:
		return fmt.Errorf("%T %s/%s still exists", obj, ns, name)
	}
}
