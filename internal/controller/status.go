package controller

import (
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flint-dev/flint/api/v1alpha1"
)

// observation is everything the status is computed from.
type observation struct {
	agent      *v1alpha1.Agent    // defaulted
	deployment *appsv1.Deployment // nil until it exists in the cache
	pods       []corev1.Pod       // the agent's pods
	desired    int32              // what the Deployment was asked for
	template   string             // hash of the pod template asked for
	failure    *agentFailure      // set by the caller when reconciling itself failed
}

// computeStatus returns the agent's new status. Fields written by others
// (lastInvocationAt, by the gateways) are kept as they are.
func (c Config) computeStatus(old v1alpha1.AgentStatus, o observation) v1alpha1.AgentStatus {
	a := o.agent
	st := *old.DeepCopy()
	st.DesiredReplicas = o.desired
	st.MaxReplicas = a.Spec.MaxReplicas()
	st.Selector = Selector(a)
	st.URL = c.agentURL(a.Namespace, a.Name)
	st.ObservedGeneration = a.Generation
	st.Replicas, st.ReadyReplicas = 0, 0
	if d := o.deployment; d != nil {
		st.Replicas, st.ReadyReplicas = d.Status.Replicas, d.Status.ReadyReplicas
	}

	st.LastFailure = lastFailure(st, o)
	ready := readyCondition(st, o)
	ready.Type, ready.ObservedGeneration = v1alpha1.ConditionReady, a.Generation
	meta.SetStatusCondition(&st.Conditions, ready)

	zero := metav1.Condition{Type: v1alpha1.ConditionScaledToZero, ObservedGeneration: a.Generation,
		Status: metav1.ConditionFalse, Reason: v1alpha1.ReasonActive,
		Message: fmt.Sprintf("%d replica(s) asked for", o.desired)}
	if o.desired == 0 {
		zero.Status, zero.Reason = metav1.ConditionTrue, v1alpha1.ReasonIdle
		zero.Message = "no replicas asked for: the next request starts one"
		if st.Replicas > 0 {
			zero.Message = fmt.Sprintf("no replicas asked for; %d still stopping", st.Replicas)
		}
	}
	meta.SetStatusCondition(&st.Conditions, zero)
	meta.SetStatusCondition(&st.Conditions, c.shutdownCondition(a))
	return st
}

// shutdownCondition tells whether requests in flight on a stopping replica
// get the agent's full request timeout, and if not, what to change.
func (c Config) shutdownCondition(a *v1alpha1.Agent) metav1.Condition {
	b := c.shutdownBudget(a)
	cond := metav1.Condition{Type: v1alpha1.ConditionGracefulShutdown, ObservedGeneration: a.Generation,
		Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonFitsGracePeriod,
		Message: fmt.Sprintf("a stopping replica gets %s to finish its requests (terminationGracePeriodSeconds %d)",
			b.DrainTimeout, int64(b.Grace.Seconds()))}
	if b.Capped {
		cond.Status, cond.Reason = metav1.ConditionFalse, v1alpha1.ReasonGracePeriodCapped
		cond.Message = fmt.Sprintf("timeouts.request %s does not fit the manager's -max-termination-grace-period %s: "+
			"a stopping replica cuts requests still running after %s; shorten timeouts.request or raise the cap",
			a.Spec.RequestTimeout(), b.Grace, b.DrainTimeout)
	}
	return cond
}

// readyCondition says whether the agent can take a request now. An agent
// scaled to zero is Ready: the gateway holds its first request and wakes it.
// A failing agent is not, with the kubelet's reason so `kubectl get` shows
// ImagePullBackOff or CrashLoopBackOff rather than a generic "not ready".
func readyCondition(st v1alpha1.AgentStatus, o observation) metav1.Condition {
	cond := func(s metav1.ConditionStatus, reason, msg string) metav1.Condition {
		return metav1.Condition{Status: s, Reason: reason, Message: msg}
	}
	if o.failure != nil {
		return cond(metav1.ConditionFalse, o.failure.Reason, o.failure.Message)
	}
	podFail, failing := findPodFailure(o.pods)
	switch {
	case o.deployment == nil:
		return cond(metav1.ConditionFalse, v1alpha1.ReasonProgressing, "creating the Deployment")
	case st.ReadyReplicas > 0:
		msg := fmt.Sprintf("%d of %d replica(s) ready", st.ReadyReplicas, o.desired)
		if failing {
			msg += fmt.Sprintf("; %s: %s", podFail.Reason, podFail.Message)
		}
		return cond(metav1.ConditionTrue, v1alpha1.ReasonReady, msg)
	case o.desired == 0 && st.LastFailure != nil:
		// Scaled to zero from a failure: say so until something changes,
		// rather than reporting an agent that cannot start as Ready.
		return cond(metav1.ConditionFalse, st.LastFailure.Reason,
			"scaled to zero; its last replica failed: "+st.LastFailure.Message+" (the next request tries again)")
	case o.desired == 0:
		return cond(metav1.ConditionTrue, v1alpha1.ReasonScaledToZero, "scaled to zero: the next request starts a replica")
	case failing:
		return cond(metav1.ConditionFalse, podFail.Reason, podFail.Message)
	}
	if f, ok := deploymentFailure(o.deployment); ok {
		return cond(metav1.ConditionFalse, f.Reason, f.Message)
	}
	return cond(metav1.ConditionFalse, v1alpha1.ReasonProgressing,
		fmt.Sprintf("waiting for %d replica(s) to become ready (%d exist)", o.desired, st.Replicas))
}

// lastFailure is the failure to remember: the one a pod reports now, else
// the remembered one while no replica is ready and the template is the one
// it failed with.
func lastFailure(st v1alpha1.AgentStatus, o observation) *v1alpha1.AgentFailure {
	if f, failing := findPodFailure(o.pods); failing {
		return &v1alpha1.AgentFailure{Reason: f.Reason, Message: f.Message, PodTemplate: o.template}
	}
	if f, failing := deploymentFailure(o.deployment); failing && f.Reason == v1alpha1.ReasonPodSecurity {
		return &v1alpha1.AgentFailure{Reason: f.Reason, Message: f.Message, PodTemplate: o.template}
	}
	if last := st.LastFailure; last != nil && st.ReadyReplicas == 0 && last.PodTemplate == o.template {
		return last
	}
	return nil
}

// deploymentFailure is what the Deployment reports: a rollout past its
// deadline, or pods its ReplicaSet cannot create (a quota; a namespace whose
// Pod Security level refuses them, which gets a reason of its own since the
// fix is in the Agent's securityContext).
func deploymentFailure(d *appsv1.Deployment) (agentFailure, bool) {
	if d == nil {
		return agentFailure{}, false
	}
	for _, c := range d.Status.Conditions {
		if c.Type == appsv1.DeploymentProgressing && c.Status == corev1.ConditionFalse && c.Reason == "ProgressDeadlineExceeded" {
			return agentFailure{Reason: v1alpha1.ReasonProgressDeadlineExceeded, Message: c.Message}, true
		}
		if c.Type == appsv1.DeploymentReplicaFailure && c.Status == corev1.ConditionTrue {
			if strings.Contains(c.Message, "violates PodSecurity") {
				return agentFailure{Reason: v1alpha1.ReasonPodSecurity, Message: c.Message +
					"; change spec.container.securityContext or spec.pod.securityContext to meet the namespace's level (or drop the fields that break it: Flint's defaults meet restricted)"}, true
			}
			return agentFailure{Reason: v1alpha1.ReasonReplicaFailure, Message: c.Message}, true
		}
	}
	return agentFailure{}, false
}
