package autoscaler

import (
	"github.com/flint-dev/flint/api/v1alpha1"
	"github.com/flint-dev/flint/internal/platform"
	"github.com/flint-dev/flint/internal/platform/platformtest"
)

// newQuietPlatform is the quiet-agent tests' platform: agents with ready
// endpoints whose SetScale, like a Deployment scaled down, also drops the
// ready endpoints beyond the new count.
func newQuietPlatform(agents ...*v1alpha1.Agent) *platformtest.Platform {
	p := platformtest.New(agents...)
	p.OnSetScale = func(key platform.AgentKey, n int32) {
		if eps, _ := p.ReadyEndpoints(key); int(n) < len(eps) {
			p.SetReady(key, eps[:n]...)
		}
	}
	return p
}
