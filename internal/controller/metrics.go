package controller

import (
	"fmt"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/types"
)

// metrics are the manager's own series; controller-runtime adds reconcile
// counts, durations and work-queue depth on the same registry.
type metrics struct {
	applies *prometheus.CounterVec
	agents  *prometheus.GaugeVec

	mu      sync.Mutex
	reasons map[types.NamespacedName]string // each agent's Ready reason, for agents
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		applies: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flint_manager_applies_total",
			Help: "Server-side applies of agents' Deployments and Services, by kind and result (applied, skipped as unchanged, error).",
		}, []string{"kind", "result"}),
		agents: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "flint_manager_agents",
			Help: "Agents by the reason of their Ready condition (Ready, ScaledToZero, Progressing, CrashLoopBackOff, ...).",
		}, []string{"reason"}),
		reasons: map[types.NamespacedName]string{},
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.applies, m.agents} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register manager metrics: %w", err)
		}
	}
	return m, nil
}

// setReason records an agent's Ready reason; "" forgets the agent.
func (m *metrics) setReason(nn types.NamespacedName, reason string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if old, ok := m.reasons[nn]; ok {
		if old == reason {
			return
		}
		m.agents.WithLabelValues(old).Dec()
		delete(m.reasons, nn)
	}
	if reason != "" {
		m.reasons[nn] = reason
		m.agents.WithLabelValues(reason).Inc()
	}
}
