package kube

import (
	toolscache "k8s.io/client-go/tools/cache"

	"github.com/flint-dev/flint/api/v1alpha1"
	"github.com/flint-dev/flint/internal/platform"
)

// upsertAgent stores a defaulted copy of an added or updated Agent, so
// readers never branch on unset fields and never see the cache's object.
func (p *Platform) upsertAgent(obj any) {
	a, ok := obj.(*v1alpha1.Agent)
	if !ok {
		return
	}
	a = a.DeepCopy()
	a.Default()
	key := platform.KeyOf(a)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.agents[key] = a
	if !p.cfg.DirectToPod {
		p.publishLocked(key) // whether it routes through its Service depends on its protocol
	}
}

// deleteAgent forgets an Agent and wakes whoever waits for its endpoints,
// so a request held for a deleted agent fails now rather than at its
// cold-start timeout.
func (p *Platform) deleteAgent(obj any) {
	if t, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	a, ok := obj.(*v1alpha1.Agent)
	if !ok {
		return
	}
	key := platform.KeyOf(a)
	p.mu.Lock()
	delete(p.agents, key)
	p.mu.Unlock()
	p.invocations.forget(key)
	p.endpoints.Delete(key)
}

// storeScale records a scale this platform just wrote, so Replicas reflects
// it before the informer delivers the update (a poke right after a scale
// must not scale again from the stale value). The stored agent is replaced,
// never modified: callers may hold it.
func (p *Platform) storeScale(key platform.AgentKey, n int32) {
	p.mu.Lock()
	defer p.mu.Unlock()
	a, ok := p.agents[key]
	if !ok {
		return
	}
	a = a.DeepCopy()
	a.Spec.Scaling.Replicas = &n
	p.agents[key] = a
}
