package kube

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flint-dev/flint/api/v1alpha1"
	"github.com/flint-dev/flint/internal/platform"
)

// finalFlushTimeout bounds the last write of invocation times at shutdown.
const finalFlushTimeout = 2 * time.Second

// invocationLog holds, per agent, the latest invocation time not yet
// written. Recording is a map load and an atomic max: the gateway calls it
// on every request.
type invocationLog struct {
	agents sync.Map // platform.AgentKey -> *invocationRecord
}

type invocationRecord struct {
	latest  atomic.Int64 // unix nanoseconds of the latest invocation
	written int64        // unix seconds last written; only the flusher touches it
}

func (l *invocationLog) record(key platform.AgentKey, t time.Time) {
	v, ok := l.agents.Load(key)
	if !ok {
		v, _ = l.agents.LoadOrStore(key, &invocationRecord{})
	}
	r := v.(*invocationRecord)
	ns := t.UnixNano()
	for {
		cur := r.latest.Load()
		if ns <= cur || r.latest.CompareAndSwap(cur, ns) {
			return
		}
	}
}

func (l *invocationLog) forget(key platform.AgentKey) { l.agents.Delete(key) }

// RecordInvocation implements platform.Platform. The time is written to the
// agent's status.lastInvocationAt by Start, at most once per
// InvocationFlushInterval per agent.
func (p *Platform) RecordInvocation(key platform.AgentKey, t time.Time) {
	if p.cfg.InvocationsByManager {
		return
	}
	p.invocations.record(key, t)
}

// RecordLastInvocation notes an agent's last invocation as a gateway
// reported it to the manager, for Start to write like RecordInvocation's.
func (p *Platform) RecordLastInvocation(key platform.AgentKey, t time.Time) {
	p.invocations.record(key, t)
}

// Start writes recorded invocation times every InvocationFlushInterval until
// ctx ends, then once more so the last ones are not lost. It implements
// manager.Runnable; every replica of a process that records invocations
// (each gateway) runs it, leader or not.
func (p *Platform) Start(ctx context.Context) error {
	defer p.probes.stop()
	t := time.NewTicker(p.cfg.InvocationFlushInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finalFlushTimeout)
			defer cancel()
			p.flushInvocations(fctx)
			return nil
		case <-t.C:
			p.flushInvocations(ctx)
		}
	}
}

// NeedLeaderElection implements manager.LeaderElectionRunnable: invocation
// times are written by every process that records them.
func (p *Platform) NeedLeaderElection() bool { return false }

// flushInvocations writes each agent's latest invocation time if it is
// newer, in whole seconds (the field's resolution), than what this process
// wrote last and than what the status already says (another gateway may
// have written a later time).
func (p *Platform) flushInvocations(ctx context.Context) {
	p.invocations.agents.Range(func(k, v any) bool {
		key, r := k.(platform.AgentKey), v.(*invocationRecord)
		latest := time.Unix(0, r.latest.Load()).Unix()
		if latest <= r.written {
			return true
		}
		if a, ok := p.Agent(key); ok && a.Status.LastInvocationAt != nil && a.Status.LastInvocationAt.Unix() >= latest {
			r.written = latest
			return true
		}
		if err := p.writeLastInvocation(ctx, key, time.Unix(latest, 0)); err != nil {
			if apierrors.IsNotFound(err) {
				p.invocations.forget(key)
				return true
			}
			p.log.Warn("cannot record the last invocation time", "agent", key.String(), "error", err)
			return ctx.Err() == nil
		}
		r.written = latest
		return true
	})
}

// writeLastInvocation merge-patches status.lastInvocationAt alone, so it
// never overwrites what the manager writes in the same status.
func (p *Platform) writeLastInvocation(ctx context.Context, key platform.AgentKey, t time.Time) error {
	body, err := json.Marshal(map[string]any{"status": map[string]any{"lastInvocationAt": metav1.NewTime(t)}})
	if err != nil {
		return fmt.Errorf("encode lastInvocationAt of agent %s: %w", key, err)
	}
	agent := &v1alpha1.Agent{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}}
	if err := p.client.Status().Patch(ctx, agent, client.RawPatch(types.MergePatchType, body)); err != nil {
		return fmt.Errorf("write lastInvocationAt of agent %s: %w", key, err)
	}
	return nil
}
