package nodeagent

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// statusDebounce lets a burst of changes (a container starts and turns
// ready) go out as one write.
const statusDebounce = 5 * time.Millisecond

func (w *podWorker) markDirty() {
	select {
	case w.dirty <- struct{}{}:
	default:
	}
}

// statusLoop writes the pod's status whenever it changed, retrying failed
// writes with back-off, until stop closes.
func (w *podWorker) statusLoop(stop <-chan struct{}) {
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	delay := 50 * time.Millisecond
	for {
		select {
		case <-stop:
			return
		case <-w.dirty:
		case <-retry.C:
		}
		time.Sleep(statusDebounce)
		if err := w.syncStatus(w.ctx()); err != nil {
			if w.ctx().Err() != nil || apierrors.IsNotFound(err) {
				continue // agent stopping or pod gone: nothing more to write
			}
			w.a.logs.event("%s: write status (retrying in %s): %v", w.key, delay, err)
			retry.Reset(delay)
			delay = min(2*delay, 5*time.Second)
			continue
		}
		delay = 50 * time.Millisecond
	}
}

// syncStatus writes the current status unless it is what was last written.
func (w *podWorker) syncStatus(ctx context.Context) error {
	w.statusMu.Lock()
	defer w.statusMu.Unlock()
	status := w.computeStatus()
	if w.lastSent != nil && apiequality.Semantic.DeepEqual(*w.lastSent, status) {
		return nil
	}
	pods := w.a.client.CoreV1().Pods(w.ns)
	pod := w.currentPod().DeepCopy()
	for attempt := 0; ; attempt++ {
		if pod.UID != w.uid {
			return apierrors.NewNotFound(corev1.Resource("pods"), w.name)
		}
		pod.Status = mergeStatus(pod.Status, status)
		_, err := pods.UpdateStatus(ctx, pod, metav1.UpdateOptions{})
		if err == nil {
			w.lastSent = &status
			return nil
		}
		if !apierrors.IsConflict(err) || attempt == 5 {
			return fmt.Errorf("update status of %s: %w", w.key, err)
		}
		// The cached object was stale (often our own previous write).
		if pod, err = pods.Get(ctx, w.name, metav1.GetOptions{}); err != nil {
			return fmt.Errorf("get %s: %w", w.key, err)
		}
	}
}

// ownConditions are the pod conditions the kubelet owns; others (readiness
// gates, DisruptionTarget) are kept as the API has them.
var ownConditions = map[corev1.PodConditionType]bool{
	corev1.PodReadyToStartContainers: true, corev1.PodInitialized: true,
	corev1.ContainersReady: true, corev1.PodReady: true,
}

// mergeStatus is cur with the fields the node agent owns taken from ours.
func mergeStatus(cur, ours corev1.PodStatus) corev1.PodStatus {
	out := ours
	out.Conditions = nil
	for _, c := range cur.Conditions {
		if !ownConditions[c.Type] && c.Type != corev1.PodScheduled {
			out.Conditions = append(out.Conditions, c)
		}
	}
	out.Conditions = append(out.Conditions, ours.Conditions...)
	out.QOSClass = cur.QOSClass
	out.NominatedNodeName = cur.NominatedNodeName
	out.Resize = cur.Resize
	out.ResourceClaimStatuses = cur.ResourceClaimStatuses
	return out
}

// computeStatus is the pod status from the containers' states, as the
// kubelet's generateAPIPodStatus makes it.
func (w *podWorker) computeStatus() corev1.PodStatus {
	w.mu.Lock()
	completed, initFailed, pod := w.completed, w.initFailed, w.pod
	w.mu.Unlock()
	st := corev1.PodStatus{
		HostIP: w.a.cfg.HostIP, HostIPs: []corev1.HostIP{{IP: w.a.cfg.HostIP}},
		PodIP: w.ip, PodIPs: []corev1.PodIP{{IP: w.ip}},
		StartTime:          &w.startTime,
		ObservedGeneration: pod.Generation,
	}
	for _, r := range w.inits {
		st.InitContainerStatuses = append(st.InitContainerStatuses, r.status())
	}
	for _, r := range w.mains {
		st.ContainerStatuses = append(st.ContainerStatuses, r.status())
	}
	if completed {
		markNeverRun(st.InitContainerStatuses)
		markNeverRun(st.ContainerStatuses)
	}
	st.Phase = w.phase(st, completed, initFailed)

	ready := func(statuses []corev1.ContainerStatus, sidecarsOnly bool) (names []string) {
		for i, s := range statuses {
			if sidecarsOnly && w.inits[i].kind != sidecarKind {
				continue
			}
			if !s.Ready {
				names = append(names, s.Name)
			}
		}
		return names
	}
	initialized := !initFailed && (anyMainStarted(st.ContainerStatuses) || allInitialized(w.inits, st.InitContainerStatuses))
	unready := append(ready(st.InitContainerStatuses, true), ready(st.ContainerStatuses, false)...)
	terminal := st.Phase == corev1.PodSucceeded || st.Phase == corev1.PodFailed

	cond := func(t corev1.PodConditionType, ok bool, reason, message string) {
		c := corev1.PodCondition{Type: t, Status: corev1.ConditionFalse, ObservedGeneration: pod.Generation}
		if ok {
			c.Status = corev1.ConditionTrue
		} else {
			c.Reason, c.Message = reason, message
		}
		if prev, found := w.conditions[t]; found && prev.Status == c.Status {
			c.LastTransitionTime = prev.LastTransitionTime
		} else {
			c.LastTransitionTime = metav1.Now()
		}
		w.conditions[t] = c
		st.Conditions = append(st.Conditions, c)
	}
	cond(corev1.PodReadyToStartContainers, !completed, "", "")
	cond(corev1.PodInitialized, initialized, "ContainersNotInitialized",
		fmt.Sprintf("containers with incomplete status: %v", incompleteInits(w.inits, st.InitContainerStatuses)))
	containersReady, reason, message := len(unready) == 0 && !terminal, "ContainersNotReady", fmt.Sprintf("containers with unready status: %v", unready)
	if terminal {
		reason, message = "PodCompleted", ""
		if st.Phase == corev1.PodFailed {
			reason = "PodFailed"
		}
	}
	cond(corev1.ContainersReady, containersReady, reason, message)
	podReady, gateMsg := containersReady, readinessGateMessage(pod)
	if podReady && gateMsg != "" {
		podReady, reason, message = false, "ReadinessGatesNotReady", gateMsg
	}
	cond(corev1.PodReady, podReady, reason, message)
	// PodScheduled is the binding's; kept here so a pod bound by setting
	// spec.nodeName directly has it too.
	st.Conditions = append(st.Conditions, scheduledCondition(pod))
	return st
}

// phase is the kubelet's getPhase, without container restart rules.
func (w *podWorker) phase(st corev1.PodStatus, completed, initFailed bool) corev1.PodPhase {
	if initFailed {
		return corev1.PodFailed
	}
	pendingInit := false
	for i, s := range st.InitContainerStatuses {
		if w.inits[i].kind == sidecarKind {
			pendingInit = pendingInit || s.Started == nil || !*s.Started
		} else {
			pendingInit = pendingInit || s.State.Terminated == nil || s.State.Terminated.ExitCode != 0
		}
	}
	running, waiting, stopped, succeeded := 0, 0, 0, 0
	for _, s := range st.ContainerStatuses {
		switch {
		case s.State.Running != nil:
			running++
		case s.State.Terminated != nil:
			stopped++
			if s.State.Terminated.ExitCode == 0 {
				succeeded++
			}
		case s.LastTerminationState.Terminated != nil:
			stopped++
		default:
			waiting++
		}
	}
	switch {
	case completed && running == 0 && waiting == 0:
		if stopped == succeeded {
			return corev1.PodSucceeded
		}
		return corev1.PodFailed
	case (pendingInit && !anyMainStarted(st.ContainerStatuses)) || waiting > 0:
		return corev1.PodPending
	case running > 0:
		return corev1.PodRunning
	case w.spec().RestartPolicy == corev1.RestartPolicyAlways:
		return corev1.PodRunning // all restarting
	}
	return corev1.PodRunning
}

// markNeverRun reports containers that never ran in a terminated pod the
// way the kubelet does.
func markNeverRun(statuses []corev1.ContainerStatus) {
	for i := range statuses {
		if statuses[i].State.Waiting != nil {
			statuses[i].State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
				ExitCode: 137, Reason: "ContainerStatusUnknown",
				Message: "The container could not be located when the pod was terminated",
			}}
		}
	}
}

func anyMainStarted(statuses []corev1.ContainerStatus) bool {
	for _, s := range statuses {
		if s.State.Running != nil || s.State.Terminated != nil || s.LastTerminationState.Terminated != nil {
			return true
		}
	}
	return false
}

func allInitialized(rs []*containerRunner, statuses []corev1.ContainerStatus) bool {
	return len(incompleteInits(rs, statuses)) == 0
}

// incompleteInits names the init containers not yet done: a regular one
// until it completed, a sidecar until it started.
func incompleteInits(rs []*containerRunner, statuses []corev1.ContainerStatus) (names []string) {
	for i, s := range statuses {
		done := s.Ready
		if rs[i].kind == sidecarKind {
			done = s.Started != nil && *s.Started
		}
		if !done {
			names = append(names, s.Name)
		}
	}
	return names
}

func readinessGateMessage(pod *corev1.Pod) string {
	var msgs []string
	for _, g := range pod.Spec.ReadinessGates {
		found := false
		for _, c := range pod.Status.Conditions {
			if c.Type == g.ConditionType {
				found = true
				if c.Status != corev1.ConditionTrue {
					msgs = append(msgs, fmt.Sprintf("the status of pod readiness gate %q is not \"True\", but %v", g.ConditionType, c.Status))
				}
			}
		}
		if !found {
			msgs = append(msgs, fmt.Sprintf("corresponding condition of pod readiness gate %q does not exist.", g.ConditionType))
		}
	}
	return strings.Join(msgs, ", ")
}

func scheduledCondition(pod *corev1.Pod) corev1.PodCondition {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled {
			return c
		}
	}
	return corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: pod.CreationTimestamp}
}
