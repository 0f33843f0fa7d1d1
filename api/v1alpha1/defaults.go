package v1alpha1

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Defaults applied to every Agent; docs/configuration.md documents each one.
const (
	DefaultNamespace        = "default"
	DefaultMinReplicas      = int32(0)
	DefaultMaxReplicas      = int32(10)
	DefaultUnlimitedTarget  = int32(100)
	DefaultTargetPercent    = 70
	DefaultScaleToZeroAfter = 30 * time.Second
	DefaultStableWindow     = 60 * time.Second
	DefaultRequestTimeout   = 300 * time.Second
	DefaultColdStartTimeout = 60 * time.Second
)

// Default fills every unset optional field with its default, so code that
// reads an Agent after Default never sees a nil pointer.
func (a *Agent) Default() {
	if a.Namespace == "" {
		a.Namespace = DefaultNamespace
	}
	s := &a.Spec
	if s.Protocol == "" {
		s.Protocol = ProtocolHTTP
	}
	if s.Scaling.MinReplicas == nil {
		s.Scaling.MinReplicas = ptr(DefaultMinReplicas)
	}
	if s.Scaling.MaxReplicas == nil {
		s.Scaling.MaxReplicas = ptr(max(DefaultMaxReplicas, *s.Scaling.MinReplicas))
	}
	if s.Scaling.Target == nil {
		s.Scaling.Target = ptr(DefaultTarget(s.Concurrency))
	}
	if s.Scaling.ScaleToZeroAfter == nil {
		s.Scaling.ScaleToZeroAfter = &metav1.Duration{Duration: DefaultScaleToZeroAfter}
	}
	if s.Scaling.StableWindow == nil {
		s.Scaling.StableWindow = &metav1.Duration{Duration: DefaultStableWindow}
	}
	if s.Timeouts.Request == nil {
		s.Timeouts.Request = &metav1.Duration{Duration: DefaultRequestTimeout}
	}
	if s.Timeouts.ColdStart == nil {
		s.Timeouts.ColdStart = &metav1.Duration{Duration: DefaultColdStartTimeout}
	}
}

// DefaultTarget is the per-replica in-flight target for a concurrency cap:
// 70% of the cap (at least 1), or 100 when the cap is unlimited. Aiming below
// the hard cap leaves headroom for bursts while new replicas start.
func DefaultTarget(concurrency int32) int32 {
	if concurrency <= 0 {
		return DefaultUnlimitedTarget
	}
	// int64: concurrency*70 overflows int32 above ~30 million.
	return max(1, int32(int64(concurrency)*DefaultTargetPercent/100))
}

func ptr[T any](v T) *T { return &v }

// The accessors below return the effective value of a field, whether or not
// Default has run, so callers never branch on nil.

// MinReplicas is the effective replica floor.
func (s *AgentSpec) MinReplicas() int32 { return deref(s.Scaling.MinReplicas, DefaultMinReplicas) }

// MaxReplicas is the effective replica ceiling.
func (s *AgentSpec) MaxReplicas() int32 {
	return deref(s.Scaling.MaxReplicas, max(DefaultMaxReplicas, s.MinReplicas()))
}

// Target is the effective in-flight target per replica.
func (s *AgentSpec) Target() int32 { return deref(s.Scaling.Target, DefaultTarget(s.Concurrency)) }

// ScaleToZeroAfter is the effective idle time before scaling to zero.
func (s *AgentSpec) ScaleToZeroAfter() time.Duration {
	return dur(s.Scaling.ScaleToZeroAfter, DefaultScaleToZeroAfter)
}

// StableWindow is the effective averaging window.
func (s *AgentSpec) StableWindow() time.Duration {
	return dur(s.Scaling.StableWindow, DefaultStableWindow)
}

// RequestTimeout is the effective request timeout.
func (s *AgentSpec) RequestTimeout() time.Duration {
	return dur(s.Timeouts.Request, DefaultRequestTimeout)
}

// ColdStartTimeout is the effective cold-start hold limit.
func (s *AgentSpec) ColdStartTimeout() time.Duration {
	return dur(s.Timeouts.ColdStart, DefaultColdStartTimeout)
}

func deref[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}

func dur(d *metav1.Duration, def time.Duration) time.Duration {
	if d == nil {
		return def
	}
	return d.Duration
}
