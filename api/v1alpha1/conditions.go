package v1alpha1

import (
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Condition types of an Agent.
const (
	ConditionReady        = "Ready"
	ConditionScaledToZero = "ScaledToZero"
	// ConditionGracefulShutdown says whether a stopping replica gets its
	// full request timeout to finish (False when the manager's cap on the
	// grace period cut it).
	ConditionGracefulShutdown = "GracefulShutdown"
)

// Reasons of the Ready condition besides the kubelet's and scheduler's own
// (ImagePullBackOff, CrashLoopBackOff, Unschedulable, ...), which are
// passed through as they are.
const (
	ReasonReady                    = "Ready"
	ReasonScaledToZero             = "ScaledToZero"
	ReasonProgressing              = "Progressing"
	ReasonInvalidSpec              = "InvalidSpec"
	ReasonReconcileFailed          = "ReconcileFailed"
	ReasonProgressDeadlineExceeded = "ProgressDeadlineExceeded"
	ReasonReplicaFailure           = "ReplicaFailure"
	ReasonPodSecurity              = "PodSecurity"
)

// Reasons of Events besides the Ready condition's: Recovered when a replica
// is ready again after a failure, Scaled when the replicas asked for change.
const (
	ReasonRecovered = "Recovered"
	ReasonScaled    = "Scaled"
)

// Reasons of the GracefulShutdown condition.
const (
	ReasonFitsGracePeriod   = "FitsGracePeriod"
	ReasonGracePeriodCapped = "GracePeriodCapped"
)

// Reasons of the ScaledToZero condition.
const (
	ReasonIdle   = "Idle"
	ReasonActive = "Active"
)

// IsFailure tells a Ready condition that needs someone's attention from one
// that only says the agent is on its way.
func IsFailure(c *metav1.Condition) bool {
	return c.Status == metav1.ConditionFalse && c.Reason != ReasonProgressing
}

// Failure is the rule every reader of an Agent's status applies (the
// gateways on Kubernetes, `flint agents -kube`): an agent is failing when
// it is not Ready for a reason other than still starting
// (ImagePullBackOff, CrashLoopBackOff, Unschedulable, ...). A failure
// reported for an older generation of the spec does not count: the user
// may just have fixed it.
func Failure(a *Agent) (reason, message string, failing bool) {
	c := meta.FindStatusCondition(a.Status.Conditions, ConditionReady)
	if c == nil || !IsFailure(c) || c.ObservedGeneration != a.Generation {
		return "", "", false
	}
	return c.Reason, c.Message, true
}
