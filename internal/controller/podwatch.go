package controller

import (
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
)

// podHealthChanged passes pod events that can change an Agent's status:
// creation, deletion, and updates that change readiness or a container's
// state. The kubelet rewrites pod status often (restart counts, back-off
// messages); those updates would only reconcile the agent for nothing.
func podHealthChanged() predicate.Predicate {
	return predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			oldPod, ok1 := e.ObjectOld.(*corev1.Pod)
			newPod, ok2 := e.ObjectNew.(*corev1.Pod)
			if !ok1 || !ok2 {
				return true
			}
			return podHealth(oldPod) != podHealth(newPod)
		},
	}
}

// podHealth summarises what the status reads from a pod.
func podHealth(p *corev1.Pod) string {
	var b strings.Builder
	b.WriteString(strconv.FormatBool(p.DeletionTimestamp != nil))
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady || c.Type == corev1.PodScheduled {
			b.WriteString("|" + string(c.Type) + "=" + string(c.Status) + ":" + c.Reason)
		}
	}
	for _, statuses := range [][]corev1.ContainerStatus{p.Status.InitContainerStatuses, p.Status.ContainerStatuses} {
		for _, cs := range statuses {
			b.WriteString("|" + cs.Name + "=")
			switch s := cs.State; {
			case s.Waiting != nil:
				b.WriteString("waiting:" + s.Waiting.Reason)
			case s.Terminated != nil:
				b.WriteString("terminated:" + strconv.Itoa(int(s.Terminated.ExitCode)))
			case s.Running != nil:
				b.WriteString("running")
			}
		}
	}
	return b.String()
}
