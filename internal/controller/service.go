package controller

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"

	"github.com/flint-dev/flint/api/v1alpha1"
)

// desiredService is the agent's Service. The gateway routes to pod IPs
// from its EndpointSlices (no kube-proxy hop); the ClusterIP is a fallback
// and lets in-cluster callers that bypass the gateway still reach the
// sidecars. The admin port is there so the EndpointSlices list it too.
// Target ports are numeric: the ports are fixed, and a numeric target does
// not depend on name lookup reaching into (sidecar) init containers.
func desiredService(a *v1alpha1.Agent) *corev1ac.ServiceApplyConfiguration {
	return corev1ac.Service(a.Name, a.Namespace).
		WithLabels(labelsFor(a)).
		WithOwnerReferences(ownerReference(a)).
		WithSpec(corev1ac.ServiceSpec().
			WithType(corev1.ServiceTypeClusterIP).
			WithSelector(selectorFor(a)).
			WithPorts(
				corev1ac.ServicePort().WithName(ServingPortName).WithProtocol(corev1.ProtocolTCP).
					WithPort(ServingPort).WithTargetPort(intstr.FromInt32(ServingPort)),
				corev1ac.ServicePort().WithName(AdminPortName).WithProtocol(corev1.ProtocolTCP).
					WithPort(AdminPort).WithTargetPort(intstr.FromInt32(AdminPort)),
			))
}
