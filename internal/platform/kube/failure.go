package kube

import (
	"github.com/flint-dev/flint/api/v1alpha1"
	"github.com/flint-dev/flint/internal/platform"
)

// Failure implements platform.FailureReporter from the Ready condition the
// manager writes: an agent is failing when it is not Ready for a reason
// other than still starting (ImagePullBackOff, CrashLoopBackOff,
// Unschedulable, ...). A failure reported for an older generation of the
// spec does not count: the user may just have fixed it.
func (p *Platform) Failure(key platform.AgentKey) (reason, message string, failing bool) {
	a, ok := p.Agent(key)
	if !ok {
		return "", "", false
	}
	return v1alpha1.Failure(a)
}
