package controller

import (
	appsv1 "k8s.io/api/apps/v1"
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
//
// tls sets the serving port's appProtocol to v1alpha1.ServingAppProtocolTLS, which
// tells the gateways to speak TLS to the sidecars. Sidecars with a
// certificate answer plain HTTP too, so the manager says so only once every
// replica runs with one (rolledOut), and stops saying so at once when TLS
// is turned off, before the replicas without certificates roll out.
func desiredService(a *v1alpha1.Agent, tls bool) *corev1ac.ServiceApplyConfiguration {
	serving := corev1ac.ServicePort().WithName(v1alpha1.ServingPortName).WithProtocol(corev1.ProtocolTCP).
		WithPort(v1alpha1.ServingPort).WithTargetPort(intstr.FromInt32(v1alpha1.ServingPort))
	if tls {
		serving.WithAppProtocol(v1alpha1.ServingAppProtocolTLS)
	}
	return corev1ac.Service(a.Name, a.Namespace).
		WithLabels(labelsFor(a)).
		WithOwnerReferences(ownerReference(a)).
		WithSpec(corev1ac.ServiceSpec().
			WithType(corev1.ServiceTypeClusterIP).
			WithSelector(selectorFor(a)).
			WithPorts(
				serving,
				corev1ac.ServicePort().WithName(v1alpha1.AdminPortName).WithProtocol(corev1.ProtocolTCP).
					WithPort(v1alpha1.AdminPort).WithTargetPort(intstr.FromInt32(v1alpha1.AdminPort)),
			))
}

// rolledOut reports whether every replica of deploy runs its current
// template: the Deployment controller has seen the latest spec and no pod
// of an older ReplicaSet remains.
func rolledOut(deploy *appsv1.Deployment) bool {
	if deploy == nil {
		return false
	}
	st := deploy.Status
	return st.ObservedGeneration >= deploy.Generation && st.UpdatedReplicas == st.Replicas
}
