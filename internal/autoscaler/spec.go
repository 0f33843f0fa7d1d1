package autoscaler

import (
	"errors"
	"fmt"
	"time"

	"github.com/flint-dev/flint/api/v1alpha1"
)

// Spec is the part of an Agent's spec that the Decider reads, with every
// default already applied.
type Spec struct {
	MinReplicas int32
	MaxReplicas int32
	// Target is the in-flight requests per replica to aim for.
	Target float64
	// ScaleToZeroAfter is how long the agent must see no request at all
	// before its last replica goes.
	ScaleToZeroAfter time.Duration
	// StableWindow is the averaging window, and how long scale-down is
	// held off after a scale-up.
	StableWindow time.Duration
}

// SpecOf returns the effective scaling spec of an agent.
func SpecOf(a *v1alpha1.Agent) Spec {
	s := &a.Spec
	return Spec{
		MinReplicas:      s.MinReplicas(),
		MaxReplicas:      s.MaxReplicas(),
		Target:           float64(s.Target()),
		ScaleToZeroAfter: s.ScaleToZeroAfter(),
		StableWindow:     s.StableWindow(),
	}
}

// sanitized returns s with values the Decider can always work with, so a
// spec that slipped past validation degrades instead of dividing by zero.
func (s Spec) sanitized() Spec {
	s.MinReplicas = max(s.MinReplicas, 0)
	s.MaxReplicas = max(s.MaxReplicas, s.MinReplicas, 1)
	if s.Target <= 0 {
		s.Target = float64(v1alpha1.DefaultUnlimitedTarget)
	}
	if s.StableWindow <= 0 {
		s.StableWindow = v1alpha1.DefaultStableWindow
	}
	if s.ScaleToZeroAfter <= 0 {
		s.ScaleToZeroAfter = v1alpha1.DefaultScaleToZeroAfter
	}
	return s
}

// Tuning holds the cluster-wide knobs of the algorithm (per-agent knobs are in
// Spec). The defaults are Knative's, which have years of production behind
// them.
type Tuning struct {
	// PanicWindowPercent sizes the panic window as a percentage of the
	// stable window (10 → 6s for a 60s window).
	PanicWindowPercent float64
	// PanicThresholdPercent is how far panic-window demand must exceed
	// ready capacity to enter panic mode (200 → twice).
	PanicThresholdPercent float64
	// MaxScaleUpRate bounds growth per decision to this multiple of the
	// ready replicas.
	MaxScaleUpRate float64
	// MaxScaleDownRate bounds shrinkage per decision: at most current/rate
	// replicas go (2 → at most halve).
	MaxScaleDownRate float64
	// BucketSize is the granularity of the averaging windows.
	BucketSize time.Duration
}

// Defaults of Tuning.
const (
	DefaultPanicWindowPercent    = 10.0
	DefaultPanicThresholdPercent = 200.0
	DefaultMaxScaleUpRate        = 1000.0
	DefaultMaxScaleDownRate      = 2.0
	DefaultBucketSize            = time.Second
)

// DefaultTuning returns the default knobs.
func DefaultTuning() Tuning {
	return Tuning{
		PanicWindowPercent:    DefaultPanicWindowPercent,
		PanicThresholdPercent: DefaultPanicThresholdPercent,
		MaxScaleUpRate:        DefaultMaxScaleUpRate,
		MaxScaleDownRate:      DefaultMaxScaleDownRate,
		BucketSize:            DefaultBucketSize,
	}
}

// Validate reports every knob that is out of range.
func (t Tuning) Validate() error {
	var errs []error
	if t.PanicWindowPercent <= 0 || t.PanicWindowPercent > 100 {
		errs = append(errs, fmt.Errorf("panic window percent (%v) must be in (0, 100]", t.PanicWindowPercent))
	}
	if t.PanicThresholdPercent <= 100 {
		errs = append(errs, fmt.Errorf("panic threshold percent (%v) must be above 100", t.PanicThresholdPercent))
	}
	if t.MaxScaleUpRate <= 1 {
		errs = append(errs, fmt.Errorf("max scale-up rate (%v) must be above 1", t.MaxScaleUpRate))
	}
	if t.MaxScaleDownRate <= 1 {
		errs = append(errs, fmt.Errorf("max scale-down rate (%v) must be above 1", t.MaxScaleDownRate))
	}
	if t.BucketSize <= 0 {
		errs = append(errs, fmt.Errorf("bucket size (%v) must be positive", t.BucketSize))
	}
	return errors.Join(errs...)
}

// panicWindow is the panic window for a stable window: a percentage of it,
// rounded to whole buckets and never shorter than one bucket.
func (t Tuning) panicWindow(stable time.Duration) time.Duration {
	d := time.Duration(float64(stable) * t.PanicWindowPercent / 100).Round(t.BucketSize)
	return max(d, t.BucketSize)
}
