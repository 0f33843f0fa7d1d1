package kube

import (
	"k8s.io/apimachinery/pkg/api/meta"

	"github.com/flint-dev/flint/api/v1alpha1"
	"github.com/flint-dev/flint/internal/controller"
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
	return failureOf(a)
}

func failureOf(a *v1alpha1.Agent) (reason, message string, failing bool) {
	c := meta.FindStatusCondition(a.Status.Conditions, v1alpha1.ConditionReady)
	if c == nil || !controller.IsFailure(c) || c.ObservedGeneration != a.Generation {
		return "", "", false
	}
	return c.Reason, c.Message, true
}
