package controller

import (
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flint-dev/flint/api/v1alpha1"
)

func waitingPod(name string, created time.Time, container, reason, msg string) corev1.Pod {
	return corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: metav1.NewTime(created)},
		Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{
			Name: container, State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: msg}},
		}}},
	}
}

func TestFindPodFailure(t *testing.T) {
	t0 := time.Now()
	crashing := waitingPod("new", t0.Add(time.Minute), "agent", "CrashLoopBackOff", "back-off 10s restarting failed container")
	crashing.Status.ContainerStatuses[0].LastTerminationState.Terminated = &corev1.ContainerStateTerminated{ExitCode: 3, Reason: "Error"}
	sidecarPull := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "sc"}, Status: corev1.PodStatus{
		InitContainerStatuses: []corev1.ContainerStatus{{Name: SidecarContainerName, State: corev1.ContainerState{
			Waiting: &corev1.ContainerStateWaiting{Reason: "ErrImagePull", Message: "not found"}}}}}}
	unschedulable := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "u"}, Status: corev1.PodStatus{Conditions: []corev1.PodCondition{{
		Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: "Unschedulable", Message: "0/3 nodes are available"}}}}
	oom := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "o"}, Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{
		Name: "agent", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 137, Reason: "OOMKilled"}}}}}}
	deleting := waitingPod("gone", t0.Add(2*time.Minute), "agent", "CrashLoopBackOff", "")
	deleting.DeletionTimestamp = &metav1.Time{Time: t0}

	for _, tc := range []struct {
		name       string
		pods       []corev1.Pod
		wantReason string
		wantInMsg  []string
	}{
		{"starting is not failing", []corev1.Pod{waitingPod("p", t0, "agent", "ContainerCreating", "")}, "", nil},
		{"newest pod's failure wins", []corev1.Pod{
			waitingPod("old", t0, "agent", "ImagePullBackOff", "Back-off pulling image"), crashing, deleting},
			"CrashLoopBackOff", []string{"pod new, container agent", "back-off 10s", "last exit code 3, Error"}},
		{"sidecar image", []corev1.Pod{sidecarPull}, "ErrImagePull", []string{"container flint-proxy", "not found"}},
		{"unschedulable", []corev1.Pod{unschedulable}, "Unschedulable", []string{"pod u", "0/3 nodes"}},
		{"killed", []corev1.Pod{oom}, "OOMKilled", []string{"exited with code 137"}},
		{"terminating pods do not count", []corev1.Pod{deleting}, "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, ok := findPodFailure(tc.pods)
			if ok != (tc.wantReason != "") || f.Reason != tc.wantReason {
				t.Fatalf("failure %+v (found %v), want reason %q", f, ok, tc.wantReason)
			}
			for _, s := range tc.wantInMsg {
				if !strings.Contains(f.Message, s) {
					t.Errorf("message %q lacks %q", f.Message, s)
				}
			}
		})
	}
}

func TestComputeStatusConditions(t *testing.T) {
	cfg := testConfig()
	a := testAgent("agents", "echo")
	a.Generation = 7
	deploy := func(replicas, ready int32, conds ...appsv1.DeploymentCondition) *appsv1.Deployment {
		return &appsv1.Deployment{Status: appsv1.DeploymentStatus{Replicas: replicas, ReadyReplicas: ready, Conditions: conds}}
	}
	pulling := []corev1.Pod{waitingPod("p", time.Now(), "agent", "ImagePullBackOff", "Back-off pulling image")}
	for _, tc := range []struct {
		name                  string
		obs                   observation
		ready                 metav1.ConditionStatus
		reason, zero, zeroWhy string
	}{
		{"no deployment yet", observation{desired: 1}, "False", v1alpha1.ReasonProgressing, "False", v1alpha1.ReasonActive},
		{"scaled to zero", observation{deployment: deploy(0, 0), desired: 0}, "True", v1alpha1.ReasonScaledToZero, "True", v1alpha1.ReasonIdle},
		{"ready", observation{deployment: deploy(2, 1), desired: 2}, "True", v1alpha1.ReasonReady, "False", v1alpha1.ReasonActive},
		{"starting", observation{deployment: deploy(1, 0), desired: 1}, "False", v1alpha1.ReasonProgressing, "False", v1alpha1.ReasonActive},
		{"image pull", observation{deployment: deploy(1, 0), desired: 1, pods: pulling}, "False", "ImagePullBackOff", "False", v1alpha1.ReasonActive},
		{"stuck rollout", observation{deployment: deploy(1, 0, appsv1.DeploymentCondition{
			Type: appsv1.DeploymentProgressing, Status: corev1.ConditionFalse, Reason: "ProgressDeadlineExceeded"}), desired: 1},
			"False", v1alpha1.ReasonProgressDeadlineExceeded, "False", v1alpha1.ReasonActive},
		{"quota", observation{deployment: deploy(0, 0, appsv1.DeploymentCondition{
			Type: appsv1.DeploymentReplicaFailure, Status: corev1.ConditionTrue, Reason: "FailedCreate", Message: "exceeded quota"}), desired: 1},
			"False", v1alpha1.ReasonReplicaFailure, "False", v1alpha1.ReasonActive},
		{"own failure", observation{desired: 1, failure: &agentFailure{Reason: v1alpha1.ReasonReconcileFailed, Message: "boom"}},
			"False", v1alpha1.ReasonReconcileFailed, "False", v1alpha1.ReasonActive},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.obs.agent = a
			old := v1alpha1.AgentStatus{LastInvocationAt: &metav1.Time{Time: time.Unix(1000, 0)}}
			st := cfg.computeStatus(old, tc.obs)
			ready := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionReady)
			zero := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionScaledToZero)
			if ready == nil || ready.Status != tc.ready || ready.Reason != tc.reason || ready.ObservedGeneration != 7 {
				t.Errorf("Ready = %+v, want %s/%s", ready, tc.ready, tc.reason)
			}
			if zero == nil || string(zero.Status) != tc.zero || zero.Reason != tc.zeroWhy {
				t.Errorf("ScaledToZero = %+v, want %s/%s", zero, tc.zero, tc.zeroWhy)
			}
			if st.Selector != v1alpha1.LabelAgent+"=echo" || st.URL != "https://agents.example.com/v1/agents/agents/echo/" ||
				st.ObservedGeneration != 7 || st.DesiredReplicas != tc.obs.desired {
				t.Errorf("status fields %+v", st)
			}
			if st.LastInvocationAt == nil || !st.LastInvocationAt.Equal(old.LastInvocationAt) {
				t.Error("lastInvocationAt (the gateways' field) was not kept")
			}
		})
	}
}

func TestPodHealthIgnoresNoise(t *testing.T) {
	p := waitingPod("p", time.Now(), "agent", "CrashLoopBackOff", "back-off 10s")
	q := p.DeepCopy()
	q.Status.ContainerStatuses[0].State.Waiting.Message = "back-off 20s"
	q.Status.ContainerStatuses[0].RestartCount = 4
	if podHealth(&p) != podHealth(q) {
		t.Error("a new back-off message must not reconcile the agent")
	}
	q.Status.ContainerStatuses[0].State = corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}
	if podHealth(&p) == podHealth(q) {
		t.Error("a container that started running must reconcile the agent")
	}
}

// TestFailureOutlivesScaleToZero: an agent whose replica could not pull its
// image is not reported Ready once it is back at zero; the failure stays
// until a replica is ready or the pod template changes.
func TestFailureOutlivesScaleToZero(t *testing.T) {
	cfg := testConfig()
	a := testAgent("agents", "broken")
	pulling := []corev1.Pod{waitingPod("p", time.Now(), "agent", "ImagePullBackOff", "Back-off pulling image")}
	at := func(replicas, ready int32) *appsv1.Deployment {
		return &appsv1.Deployment{Status: appsv1.DeploymentStatus{Replicas: replicas, ReadyReplicas: ready}}
	}
	ready := func(st v1alpha1.AgentStatus) *metav1.Condition {
		return meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionReady)
	}

	st := cfg.computeStatus(v1alpha1.AgentStatus{}, observation{agent: a, deployment: at(1, 0), desired: 1, pods: pulling, template: "t1"})
	if st.LastFailure == nil || st.LastFailure.Reason != "ImagePullBackOff" {
		t.Fatalf("failure not remembered: %+v", st.LastFailure)
	}
	st = cfg.computeStatus(st, observation{agent: a, deployment: at(0, 0), desired: 0, template: "t1"})
	if c := ready(st); c.Status != metav1.ConditionFalse || c.Reason != "ImagePullBackOff" ||
		!strings.Contains(c.Message, "scaled to zero; its last replica failed") {
		t.Errorf("at zero after a failure: %+v", c)
	}
	if cfg.computeStatus(st, observation{agent: a, deployment: at(0, 0), desired: 0, template: "t2"}).LastFailure != nil {
		t.Error("a new pod template must get a fresh start")
	}
	healed := cfg.computeStatus(st, observation{agent: a, deployment: at(1, 1), desired: 1, template: "t1"})
	if healed.LastFailure != nil || ready(healed).Reason != v1alpha1.ReasonReady {
		t.Errorf("a ready replica clears the failure: %+v", healed)
	}
	if c := ready(cfg.computeStatus(healed, observation{agent: a, deployment: at(0, 0), desired: 0, template: "t1"})); c.Reason != v1alpha1.ReasonScaledToZero {
		t.Errorf("healthy agent at zero: %+v", c)
	}
}

// TestRootImageGetsAHint: restricted defaults make the kubelet refuse an
// image that runs as root; the failure says what to change in the Agent.
func TestRootImageGetsAHint(t *testing.T) {
	p := waitingPod("p", time.Now(), "agent", "CreateContainerConfigError",
		"container has runAsNonRoot and image will run as root (pod: \"p\", container: agent)")
	f, ok := findPodFailure([]corev1.Pod{p})
	if !ok || f.Reason != "CreateContainerConfigError" || !strings.Contains(f.Message, "spec.container.securityContext.runAsUser") {
		t.Errorf("failure %+v", f)
	}
	q := waitingPod("q", time.Now(), "agent", "CreateContainerConfigError", `secret "keys" not found`)
	if f, _ := findPodFailure([]corev1.Pod{q}); strings.Contains(f.Message, "runAsUser") {
		t.Errorf("hint on an unrelated failure: %s", f.Message)
	}
}
