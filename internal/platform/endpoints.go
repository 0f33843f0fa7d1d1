package platform

import (
	"slices"
	"sync"
)

// EndpointSet holds the ready endpoints of many agents and wakes waiters when
// an agent's set changes. Implementations of Platform embed one as their
// ready-endpoints cache.
type EndpointSet struct {
	mu     sync.RWMutex
	agents map[AgentKey]*endpointEntry
}

type endpointEntry struct {
	eps     []Endpoint
	changed chan struct{}
}

// Get returns a snapshot of key's ready endpoints (callers must not modify
// it) and a channel closed at the next change.
func (s *EndpointSet) Get(key AgentKey) ([]Endpoint, <-chan struct{}) {
	s.mu.RLock()
	if e, ok := s.agents[key]; ok {
		defer s.mu.RUnlock()
		return e.eps, e.changed
	}
	s.mu.RUnlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.entry(key)
	return e.eps, e.changed
}

// Set replaces key's ready endpoints and wakes waiters if they differ.
func (s *EndpointSet) Set(key AgentKey, eps []Endpoint) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.entry(key)
	if slices.Equal(e.eps, eps) {
		return
	}
	e.eps = slices.Clone(eps)
	close(e.changed)
	e.changed = make(chan struct{})
}

// Delete forgets key and wakes its waiters.
func (s *EndpointSet) Delete(key AgentKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.agents[key]; ok {
		close(e.changed)
		delete(s.agents, key)
	}
}

func (s *EndpointSet) entry(key AgentKey) *endpointEntry {
	if s.agents == nil {
		s.agents = map[AgentKey]*endpointEntry{}
	}
	e, ok := s.agents[key]
	if !ok {
		e = &endpointEntry{changed: make(chan struct{})}
		s.agents[key] = e
	}
	return e
}
