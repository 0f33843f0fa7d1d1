package nodeagent

import (
	"context"
	"fmt"
	"runtime"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// nodeLeaseNamespace holds the kubelets' heartbeat Leases.
const nodeLeaseNamespace = corev1.NamespaceNodeLease

// leaseDuration is the kubelet's default node lease duration.
const leaseDuration = 40 * time.Second

// capacity is what the node reports. There is no scheduler to fit pods
// into it; it is generous so nothing (e.g. a future scheduler, or a
// controller computing utilisation) finds it full.
var capacity = corev1.ResourceList{
	corev1.ResourceCPU:              resource.MustParse("64"),
	corev1.ResourceMemory:           resource.MustParse("256Gi"),
	corev1.ResourcePods:             resource.MustParse("1000"),
	corev1.ResourceEphemeralStorage: resource.MustParse("1Ti"),
}

func (a *Agent) desiredNode() *corev1.Node {
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name: a.cfg.NodeName,
			Labels: map[string]string{
				corev1.LabelHostname: a.cfg.NodeName, corev1.LabelOSStable: runtime.GOOS,
				corev1.LabelArchStable: runtime.GOARCH, "flint.dev/test-node-agent": "true",
			},
		},
		Status: a.nodeStatus(),
	}
}

func (a *Agent) nodeStatus() corev1.NodeStatus {
	now := metav1.Now()
	cond := func(t corev1.NodeConditionType, s corev1.ConditionStatus, reason, msg string) corev1.NodeCondition {
		return corev1.NodeCondition{Type: t, Status: s, Reason: reason, Message: msg, LastHeartbeatTime: now, LastTransitionTime: now}
	}
	return corev1.NodeStatus{
		Capacity: capacity, Allocatable: capacity,
		Phase: corev1.NodeRunning,
		Conditions: []corev1.NodeCondition{
			cond(corev1.NodeReady, corev1.ConditionTrue, "KubeletReady", "flint test node agent is posting ready status"),
			cond(corev1.NodeMemoryPressure, corev1.ConditionFalse, "KubeletHasSufficientMemory", "no memory pressure"),
			cond(corev1.NodeDiskPressure, corev1.ConditionFalse, "KubeletHasNoDiskPressure", "no disk pressure"),
			cond(corev1.NodePIDPressure, corev1.ConditionFalse, "KubeletHasSufficientPID", "no PID pressure"),
		},
		Addresses: []corev1.NodeAddress{
			{Type: corev1.NodeInternalIP, Address: a.cfg.HostIP},
			{Type: corev1.NodeHostName, Address: a.cfg.NodeName},
		},
		NodeInfo: corev1.NodeSystemInfo{
			KubeletVersion: "v1.37.2-flint-nodeagent", OperatingSystem: runtime.GOOS, Architecture: runtime.GOARCH,
			ContainerRuntimeVersion: "flint-nodeagent://1", OSImage: "flint test node agent",
		},
	}
}

// registerNode creates the Node, or takes over an existing one of that
// name (a previous agent's), and its Lease.
func (a *Agent) registerNode(ctx context.Context) error {
	nodes := a.client.CoreV1().Nodes()
	want := a.desiredNode()
	node, err := nodes.Create(ctx, want, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		if node, err = nodes.Get(ctx, want.Name, metav1.GetOptions{}); err == nil {
			node.Status = want.Status
			node, err = nodes.UpdateStatus(ctx, node, metav1.UpdateOptions{})
		}
	}
	if err != nil {
		return fmt.Errorf("nodeagent: register node %s: %w", want.Name, err)
	}
	if err := a.renewLease(ctx, node); err != nil {
		return fmt.Errorf("nodeagent: node lease: %w", err)
	}
	return nil
}

// renewLease creates or renews the node's Lease, which
// kube-controller-manager's node lifecycle controller reads as the node's
// heartbeat. The Node owns it, so it goes with the Node.
func (a *Agent) renewLease(ctx context.Context, node *corev1.Node) error {
	leases := a.client.CoordinationV1().Leases(nodeLeaseNamespace)
	now := metav1.NewMicroTime(time.Now())
	lease, err := leases.Get(ctx, a.cfg.NodeName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		lease = &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: a.cfg.NodeName, Namespace: nodeLeaseNamespace},
			Spec: coordinationv1.LeaseSpec{
				HolderIdentity:       ptr.To(a.cfg.NodeName),
				LeaseDurationSeconds: ptr.To(int32(leaseDuration.Seconds())),
				RenewTime:            &now,
			},
		}
		if node != nil {
			lease.OwnerReferences = []metav1.OwnerReference{{
				APIVersion: "v1", Kind: "Node", Name: node.Name, UID: node.UID,
			}}
		}
		_, err = leases.Create(ctx, lease, metav1.CreateOptions{})
		return err
	}
	if err != nil {
		return err
	}
	lease.Spec.RenewTime = &now
	lease.Spec.HolderIdentity = ptr.To(a.cfg.NodeName)
	_, err = leases.Update(ctx, lease, metav1.UpdateOptions{})
	return err
}

// heartbeat renews the Lease every interval and the Ready condition's
// heartbeat every 4, so the node lifecycle controller never marks the node
// NotReady or evicts its pods (its grace period is 50s).
func (a *Agent) heartbeat() {
	t := time.NewTicker(a.cfg.HeartbeatInterval)
	defer t.Stop()
	for n := 1; ; n++ {
		select {
		case <-a.ctx.Done():
			return
		case <-t.C:
		}
		if err := a.renewLease(a.ctx, nil); err != nil && a.ctx.Err() == nil {
			a.logs.event("renew node lease: %v", err)
		}
		if n%4 == 0 {
			if err := a.refreshNodeStatus(a.ctx); err != nil && a.ctx.Err() == nil {
				a.logs.event("node status: %v", err)
			}
		}
	}
}

func (a *Agent) refreshNodeStatus(ctx context.Context) error {
	nodes := a.client.CoreV1().Nodes()
	node, err := nodes.Get(ctx, a.cfg.NodeName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		// Someone deleted the Node: register again, as a kubelet would.
		return a.registerNode(ctx)
	}
	if err != nil {
		return err
	}
	fresh := a.nodeStatus()
	// Keep transition times: only the heartbeat moves.
	for i, c := range fresh.Conditions {
		for _, old := range node.Status.Conditions {
			if old.Type == c.Type && old.Status == c.Status {
				fresh.Conditions[i].LastTransitionTime = old.LastTransitionTime
			}
		}
	}
	node.Status.Conditions = fresh.Conditions
	_, err = nodes.UpdateStatus(ctx, node, metav1.UpdateOptions{})
	return err
}

// deleteNeverStarted removes a pod that is being deleted before it ever
// ran here: there is nothing to stop.
func (a *Agent) deleteNeverStarted(pod *corev1.Pod) {
	err := a.client.CoreV1().Pods(pod.Namespace).Delete(a.ctx, pod.Name, metav1.DeleteOptions{
		GracePeriodSeconds: new(int64), Preconditions: metav1.NewUIDPreconditions(string(pod.UID)),
	})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) && a.ctx.Err() == nil {
		a.logs.event("%s/%s: delete pod: %v", pod.Namespace, pod.Name, err)
	}
}
