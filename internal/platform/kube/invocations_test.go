package kube

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/flint-dev/flint/api/v1alpha1"
	"github.com/flint-dev/flint/internal/platform"
	"github.com/flint-dev/flint/internal/testenv"
)

func TestInvocationLogKeepsTheLatest(t *testing.T) {
	var l invocationLog
	key := platform.AgentKey{Namespace: "ns", Name: "a"}
	base := time.Unix(1_000_000, 0)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 1000 {
				l.record(key, base.Add(time.Duration(i*1000+j)*time.Millisecond))
			}
		})
	}
	wg.Wait()
	v, _ := l.agents.Load(key)
	if got, want := v.(*invocationRecord).latest.Load(), base.Add(7999*time.Millisecond).UnixNano(); got != want {
		t.Errorf("latest %d, want %d", got, want)
	}
	l.record(key, base) // older: ignored
	if got := v.(*invocationRecord).latest.Load(); got != base.Add(7999*time.Millisecond).UnixNano() {
		t.Error("an older invocation replaced a newer one")
	}
}

// TestRecordInvocationCoalesces records thousands of invocations and
// counts the status writes: at most one per flush interval, and the last
// invocation lands in status.lastInvocationAt.
func TestRecordInvocationCoalesces(t *testing.T) {
	t.Parallel()
	env, _ := cluster(t)
	ns := env.Namespace(t)
	createAgent(t, env, ns, "busy", nil)

	var patches atomic.Int32
	counting := interceptor.NewClient(newDirectClient(t), interceptor.Funcs{
		SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
			patches.Add(1)
			return c.SubResource(sub).Patch(ctx, obj, patch, opts...)
		},
	})
	ctx, cancel := context.WithCancel(context.Background())
	cfg := DefaultConfig()
	cfg.InvocationFlushInterval = time.Second
	p, err := New(ctx, shared.mgr.GetCache(), counting, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.WaitForSync(ctx); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.Start(ctx) }()

	key := platform.AgentKey{Namespace: ns, Name: "busy"}
	begin := time.Now()
	var last time.Time
	for time.Since(begin) < 2500*time.Millisecond {
		for range 100 {
			last = time.Now()
			p.RecordInvocation(key, last)
		}
		time.Sleep(10 * time.Millisecond)
	}
	elapsed := time.Since(begin)
	cancel() // the final flush writes the last invocation
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// One write per full interval, one for the partial one, one at stop.
	if n, most := patches.Load(), int32(elapsed/time.Second)+2; n < 1 || n > most {
		t.Errorf("%d status writes in %s, want 1..%d", n, elapsed.Round(time.Millisecond), most)
	}
	var a v1alpha1.Agent
	if err := get(env, ns, "busy", &a); err != nil {
		t.Fatal(err)
	}
	if got := a.Status.LastInvocationAt; got == nil || got.Unix() != last.Unix() {
		t.Errorf("lastInvocationAt %v, want %v (whole seconds)", got, last.Truncate(time.Second))
	}
}

// TestRecordInvocationNeverGoesBack: a time older than the status says
// (another gateway wrote a later one) is not written.
func TestRecordInvocationNeverGoesBack(t *testing.T) {
	t.Parallel()
	env, _ := cluster(t)
	ns := env.Namespace(t)
	createAgent(t, env, ns, "late", nil)
	key := platform.AgentKey{Namespace: ns, Name: "late"}
	ctx := context.Background()

	var patches atomic.Int32
	counting := interceptor.NewClient(newDirectClient(t), interceptor.Funcs{
		SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
			patches.Add(1)
			return c.SubResource(sub).Patch(ctx, obj, patch, opts...)
		},
	})
	// Not started: the test calls flushInvocations itself.
	p, err := New(ctx, shared.mgr.GetCache(), counting, DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	recent := time.Now().Truncate(time.Second)
	if err := p.writeLastInvocation(ctx, key, recent); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, settle, func() error {
		if a, ok := p.Agent(key); !ok || a.Status.LastInvocationAt == nil || !a.Status.LastInvocationAt.Time.Equal(recent) {
			return errors.New("the platform has not seen the written time yet")
		}
		return nil
	})
	p.RecordInvocation(key, recent.Add(-time.Minute))
	p.flushInvocations(ctx)
	if n := patches.Load(); n != 1 {
		t.Errorf("%d status writes, want only the test's own", n)
	}
	var a v1alpha1.Agent
	if err := get(env, ns, "late", &a); err != nil {
		t.Fatal(err)
	}
	if !a.Status.LastInvocationAt.Time.Equal(recent) {
		t.Errorf("lastInvocationAt went back to %v", a.Status.LastInvocationAt)
	}
}

// newDirectClient reads and writes the API server without a cache.
func newDirectClient(t *testing.T) client.WithWatch {
	t.Helper()
	c, err := client.NewWithWatch(shared.env.Config, client.Options{Scheme: shared.env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestInvocationsByManager: a gateway whose demand the manager collects
// records nothing itself; the manager records what gateways report.
func TestInvocationsByManager(t *testing.T) {
	key := platform.AgentKey{Namespace: "ns", Name: "a"}
	at := time.Unix(1_000_000, 0)
	gw := &Platform{cfg: Config{InvocationsByManager: true}}
	gw.RecordInvocation(key, at)
	if _, ok := gw.invocations.agents.Load(key); ok {
		t.Error("a gateway that leaves lastInvocationAt to the manager recorded an invocation")
	}
	mgr := &Platform{cfg: DefaultConfig()}
	mgr.RecordLastInvocation(key, at)
	mgr.RecordLastInvocation(key, at.Add(-time.Second)) // another gateway's older one
	v, ok := mgr.invocations.agents.Load(key)
	if !ok || v.(*invocationRecord).latest.Load() != at.UnixNano() {
		t.Errorf("the manager did not keep the latest reported invocation")
	}
}
