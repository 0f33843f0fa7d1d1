package v1alpha1

import (
	"math"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestDefaultTarget(t *testing.T) {
	for _, tc := range []struct {
		concurrency, want int32
	}{
		{0, 100},  // unlimited
		{-1, 100}, // invalid, but never a zero or negative target
		{1, 1},    // 70% of 1 rounds down to 0: at least 1
		{2, 1},
		{3, 2},
		{10, 7},
		{100, 70},
		{1000, 700},
		{100_000_000, 70_000_000}, // would overflow int32 if computed in int32
		{math.MaxInt32, int32(int64(math.MaxInt32) * 70 / 100)},
	} {
		if got := DefaultTarget(tc.concurrency); got != tc.want {
			t.Errorf("DefaultTarget(%d) = %d, want %d", tc.concurrency, got, tc.want)
		}
	}
}

func d(v time.Duration) *metav1.Duration { return &metav1.Duration{Duration: v} }

// defaulted is the outcome of Default that the tests compare.
type defaulted struct {
	namespace                 string
	protocol                  Protocol
	minR, maxR, target        int32
	scaleToZero, stable       time.Duration
	requestTimeout, coldStart time.Duration
}

func snapshot(a *Agent) defaulted {
	s := a.Spec.Scaling
	return defaulted{
		namespace: a.Namespace, protocol: a.Spec.Protocol,
		minR: *s.MinReplicas, maxR: *s.MaxReplicas, target: *s.Target,
		scaleToZero: s.ScaleToZeroAfter.Duration, stable: s.StableWindow.Duration,
		requestTimeout: a.Spec.Timeouts.Request.Duration, coldStart: a.Spec.Timeouts.ColdStart.Duration,
	}
}

func TestDefault(t *testing.T) {
	all := defaulted{
		namespace: "default", protocol: ProtocolHTTP,
		minR: 0, maxR: 10, target: 100,
		scaleToZero: 30 * time.Second, stable: 60 * time.Second,
		requestTimeout: 300 * time.Second, coldStart: 60 * time.Second,
	}
	with := func(f func(*defaulted)) defaulted { v := all; f(&v); return v }

	for _, tc := range []struct {
		name string
		in   func(*Agent)
		want defaulted
	}{
		{"empty spec gets every default", func(*Agent) {}, all},
		{"namespace kept", func(a *Agent) { a.Namespace = "agents" },
			with(func(v *defaulted) { v.namespace = "agents" })},
		{"protocol kept", func(a *Agent) { a.Spec.Protocol = ProtocolMCP },
			with(func(v *defaulted) { v.protocol = ProtocolMCP })},
		{"target is 70% of concurrency", func(a *Agent) { a.Spec.Concurrency = 10 },
			with(func(v *defaulted) { v.target = 7 })},
		{"target is at least 1", func(a *Agent) { a.Spec.Concurrency = 1 },
			with(func(v *defaulted) { v.target = 1 })},
		{"target is 100 when concurrency is unlimited", func(a *Agent) { a.Spec.Concurrency = 0 }, all},
		{"explicit target kept", func(a *Agent) { a.Spec.Concurrency = 10; a.Spec.Scaling.Target = ptr(int32(3)) },
			with(func(v *defaulted) { v.target = 3 })},
		{"maxReplicas default never below minReplicas", func(a *Agent) { a.Spec.Scaling.MinReplicas = ptr(int32(25)) },
			with(func(v *defaulted) { v.minR, v.maxR = 25, 25 })},
		{"minReplicas below default max keeps 10", func(a *Agent) { a.Spec.Scaling.MinReplicas = ptr(int32(3)) },
			with(func(v *defaulted) { v.minR = 3 })},
		{"explicit maxReplicas kept even below min (validation reports it)", func(a *Agent) {
			a.Spec.Scaling.MinReplicas, a.Spec.Scaling.MaxReplicas = ptr(int32(5)), ptr(int32(2))
		}, with(func(v *defaulted) { v.minR, v.maxR = 5, 2 })},
		{"explicit durations kept", func(a *Agent) {
			a.Spec.Scaling.ScaleToZeroAfter, a.Spec.Scaling.StableWindow = d(time.Minute), d(2*time.Minute)
			a.Spec.Timeouts.Request, a.Spec.Timeouts.ColdStart = d(time.Second), d(2*time.Second)
		}, with(func(v *defaulted) {
			v.scaleToZero, v.stable, v.requestTimeout, v.coldStart = time.Minute, 2*time.Minute, time.Second, 2*time.Second
		})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := &Agent{}
			a.Name = "echo"
			tc.in(a)
			a.Default()
			if got := snapshot(a); got != tc.want {
				t.Errorf("after Default:\n got %+v\nwant %+v", got, tc.want)
			}
			// Default is idempotent.
			b := a.DeepCopy()
			b.Default()
			if snapshot(b) != snapshot(a) {
				t.Errorf("second Default changed the agent: %+v -> %+v", snapshot(a), snapshot(b))
			}
		})
	}
}

// TestAccessorsMatchDefault checks that the effective-value accessors agree
// with Default, whether or not Default has run.
func TestAccessorsMatchDefault(t *testing.T) {
	for _, in := range []AgentSpec{
		{},
		{Concurrency: 10},
		{Concurrency: 1},
		{Scaling: Scaling{MinReplicas: ptr(int32(20))}},
		{Scaling: Scaling{MinReplicas: ptr(int32(2)), MaxReplicas: ptr(int32(4)), Target: ptr(int32(9))}},
		{Scaling: Scaling{ScaleToZeroAfter: d(time.Second)}, Timeouts: Timeouts{Request: d(time.Hour)}},
	} {
		raw := &Agent{Spec: *in.DeepCopy()}
		def := &Agent{Spec: *in.DeepCopy()}
		def.Default()
		r, s := &raw.Spec, &def.Spec
		if r.MinReplicas() != s.MinReplicas() || r.MinReplicas() != *s.Scaling.MinReplicas ||
			r.MaxReplicas() != s.MaxReplicas() || r.MaxReplicas() != *s.Scaling.MaxReplicas ||
			r.Target() != s.Target() || r.Target() != *s.Scaling.Target ||
			r.ScaleToZeroAfter() != s.ScaleToZeroAfter() || r.StableWindow() != s.StableWindow() ||
			r.RequestTimeout() != s.RequestTimeout() || r.ColdStartTimeout() != s.ColdStartTimeout() {
			t.Errorf("accessors disagree with Default for %+v", in)
		}
	}
}
