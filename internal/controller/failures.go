package controller

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// agentFailure is why an agent cannot serve: what the kubelet or the
// scheduler reported for one of its pods, or the manager's own trouble
// (an invalid spec, a refused apply).
type agentFailure struct {
	// Reason is the kubelet's or scheduler's reason, e.g. ImagePullBackOff,
	// CrashLoopBackOff or Unschedulable; it becomes the Ready condition's reason.
	Reason  string
	Message string
}

// normalWaitingReasons are waiting states every container passes through
// on its way to running; any other waiting reason is a failure. A deny
// list rather than an allow list, so reasons added by newer kubelets are
// surfaced too.
var normalWaitingReasons = map[string]bool{"": true, "ContainerCreating": true, "PodInitializing": true}

// findPodFailure returns the failure of the newest pod that has one: the
// newest pods run the current template, so their failure is the one to fix.
func findPodFailure(pods []corev1.Pod) (agentFailure, bool) {
	sorted := slices.Clone(pods)
	slices.SortFunc(sorted, func(a, b corev1.Pod) int {
		return b.CreationTimestamp.Compare(a.CreationTimestamp.Time)
	})
	for i := range sorted {
		if f, ok := failureOf(&sorted[i]); ok {
			return f, true
		}
	}
	return agentFailure{}, false
}

// failureOf reports a pod's failure: a container stuck waiting for an
// abnormal reason (the sidecar's too: it is an init container), a container
// that crashed, or a pod the scheduler cannot place.
func failureOf(pod *corev1.Pod) (agentFailure, bool) {
	if pod.DeletionTimestamp != nil {
		return agentFailure{}, false // going away; its replacement tells the story
	}
	statuses := slices.Concat(pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses)
	for _, cs := range statuses {
		if w := cs.State.Waiting; w != nil && !normalWaitingReasons[w.Reason] {
			return agentFailure{Reason: w.Reason, Message: describe(pod, cs, w.Message) + hint(w.Message)}, true
		}
	}
	for _, cs := range statuses {
		if t := cs.State.Terminated; t != nil && t.ExitCode != 0 {
			reason := t.Reason
			if reason == "" {
				reason = "ContainerFailed"
			}
			return agentFailure{Reason: reason, Message: describe(pod, cs, fmt.Sprintf("exited with code %d", t.ExitCode))}, true
		}
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason != "" {
			return agentFailure{Reason: c.Reason, Message: fmt.Sprintf("pod %s: %s", pod.Name, c.Message)}, true
		}
	}
	return agentFailure{}, false
}

// describe names the pod and container and adds how the container last
// ended, which for a crash loop is the part that explains it.
func describe(pod *corev1.Pod, cs corev1.ContainerStatus, msg string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "pod %s, container %s", pod.Name, cs.Name)
	if msg != "" {
		b.WriteString(": " + msg)
	}
	if t := cs.LastTerminationState.Terminated; t != nil {
		fmt.Fprintf(&b, " (last exit code %d", t.ExitCode)
		if t.Reason != "" {
			b.WriteString(", " + t.Reason)
		}
		if m := strings.TrimSpace(t.Message); m != "" {
			b.WriteString(": " + truncate(m, 200))
		}
		b.WriteString(")")
	}
	return b.String()
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}

// hint says what to change in the Agent for kubelet refusals that Flint's
// own defaults can cause.
func hint(kubeletMessage string) string {
	if strings.Contains(kubeletMessage, "runAsNonRoot") {
		// Flint sets runAsNonRoot by default (Pod Security restricted).
		return "; the image runs as root: give it a non-root USER, set spec.container.securityContext.runAsUser " +
			"to a non-root UID, or set spec.pod.securityContext.runAsNonRoot: false to allow root"
	}
	return ""
}
