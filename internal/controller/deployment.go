package controller

import (
	"encoding/json"
	"fmt"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	appsv1ac "k8s.io/client-go/applyconfigurations/apps/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"

	"github.com/flint-dev/flint/api/v1alpha1"
)

// revisionHistoryLimit keeps a few old ReplicaSets for rollbacks; agents
// are redeployed often and each old ReplicaSet is an object to list.
const revisionHistoryLimit = 3

// desiredDeployment is the Deployment that runs agent a, as a server-side
// apply configuration: only the fields listed here are owned by the
// manager, so defaults and other controllers' fields are left alone. a must
// be defaulted.
func (c Config) desiredDeployment(a *v1alpha1.Agent) (*appsv1ac.DeploymentApplyConfiguration, error) {
	podSpec, err := c.podSpec(a)
	if err != nil {
		return nil, err
	}
	zero, surge := intstr.FromInt32(0), intstr.FromString("25%")
	template := corev1ac.PodTemplateSpec().WithLabels(labelsFor(a)).WithSpec(podSpec)
	if p := a.Spec.Pod; p != nil {
		// The CRD refuses Flint's own label keys, and Flint's win anyway.
		template.WithLabels(p.Labels).WithLabels(labelsFor(a))
		if len(p.Annotations) > 0 {
			template.WithAnnotations(p.Annotations)
		}
	}
	return appsv1ac.Deployment(a.Name, a.Namespace).
		WithLabels(labelsFor(a)).
		WithOwnerReferences(ownerReference(a)).
		WithSpec(appsv1ac.DeploymentSpec().
			WithReplicas(v1alpha1.DesiredReplicas(a)).
			WithSelector(metav1ac.LabelSelector().WithMatchLabels(selectorFor(a))).
			WithRevisionHistoryLimit(revisionHistoryLimit).
			// Never below the asked-for capacity during a rollout: a new
			// replica must be ready before an old one starts draining.
			WithStrategy(appsv1ac.DeploymentStrategy().
				WithType(appsv1.RollingUpdateDeploymentStrategyType).
				WithRollingUpdate(appsv1ac.RollingUpdateDeployment().
					WithMaxUnavailable(zero).WithMaxSurge(surge))).
			WithTemplate(template)), nil
}

// podSpec is the agent's pod: the Agent's pod-level settings as written,
// with the fields Flint owns set over them.
func (c Config) podSpec(a *v1alpha1.Agent) (*corev1ac.PodSpecApplyConfiguration, error) {
	agent, err := c.agentContainer(a)
	if err != nil {
		return nil, err
	}
	var user corev1.PodSpec
	if p := a.Spec.Pod; p != nil {
		user = corev1.PodSpec{
			ServiceAccountName:           p.ServiceAccountName,
			AutomountServiceAccountToken: p.AutomountServiceAccountToken,
			ImagePullSecrets:             p.ImagePullSecrets,
			Volumes:                      p.Volumes,
			NodeSelector:                 p.NodeSelector,
			Tolerations:                  p.Tolerations,
			Affinity:                     p.Affinity,
			TopologySpreadConstraints:    p.TopologySpreadConstraints,
			RuntimeClassName:             p.RuntimeClassName,
			PriorityClassName:            p.PriorityClassName,
		}
	}
	user.SecurityContext = podSecurityContext(a)
	spec := corev1ac.PodSpec()
	if err := convert(user, spec); err != nil {
		return nil, fmt.Errorf("spec.pod: %w", err)
	}
	stdio, err := stdioAgent(a)
	if err != nil {
		return nil, err
	}
	if stdio {
		spec.WithVolumes(bridgeVolumeSource())
	}
	if c.gatewayToken != nil {
		spec.WithVolumes(gatewayTokenVolumeSource(a))
	}
	if c.SidecarTLS.Enabled {
		spec.WithVolumes(sidecarTLSVolumeSource(a))
	}
	if spec.AutomountServiceAccountToken == nil {
		// Agents run arbitrary code and most have no use for API
		// credentials; an Agent that needs them says so.
		spec.WithAutomountServiceAccountToken(false)
	}
	spec.WithInitContainers(c.sidecarContainer(a))
	if stdio {
		// After the sidecar, which starts at once (it has no startup
		// probe), so the copy overlaps the sidecar's start.
		spec.WithInitContainers(c.bridgeInstaller(a))
	}
	return spec.
		WithContainers(agent).
		WithTerminationGracePeriodSeconds(int64(c.shutdownBudget(a).Grace.Seconds())).
		// Service links put every Service of the namespace in the
		// environment: slow to start with many agents, and none of the
		// agent's business.
		WithEnableServiceLinks(false), nil
}

// agentContainer is the user's container as written, with Flint's name,
// environment (PORT), preStop hook and restricted security defaults. The
// sidecar runs the user's readiness probe unless it cannot mirror it (see
// sidecarProbe); the kubelet's readiness probe is then the sidecar's
// /readyz (readinessThroughSidecar).
func (c Config) agentContainer(a *v1alpha1.Agent) (*corev1ac.ContainerApplyConfiguration, error) {
	spec := a.Spec.Container
	_, kubeletProbe := sidecarProbe(a)
	user := corev1.Container{
		Image:           spec.Image,
		ImagePullPolicy: spec.ImagePullPolicy,
		Command:         spec.Command,
		Args:            spec.Args,
		WorkingDir:      spec.WorkingDir,
		EnvFrom:         spec.EnvFrom,
		Resources:       spec.Resources,
		VolumeMounts:    spec.VolumeMounts,
		ReadinessProbe:  kubeletProbe,
		LivenessProbe:   spec.LivenessProbe,
		StartupProbe:    spec.StartupProbe,
		SecurityContext: agentSecurityContext(a),
	}
	ctr := corev1ac.Container()
	if err := convert(user, ctr); err != nil {
		return nil, fmt.Errorf("spec.container: %w", err)
	}
	if kubeletProbe == nil {
		ctr.WithReadinessProbe(readinessThroughSidecar(intstr.FromInt32(v1alpha1.AdminPort), 0))
	}
	if r := ctr.Resources; r != nil && r.Limits == nil && r.Requests == nil && r.Claims == nil {
		ctr.Resources = nil // `resources: {}` would be a field the manager owns for nothing
	}
	env, err := agentEnv(spec.Env, spec.Port)
	if err != nil {
		return nil, err
	}
	if stdio, _ := stdioAgent(a); stdio {
		ctr.Command, ctr.Args = c.bridgeCommand(a), nil
		ctr.WithVolumeMounts(corev1ac.VolumeMount().WithName(bridgeVolume).WithMountPath(bridgeDir).WithReadOnly(true))
	}
	return ctr.
		WithName(AgentContainerName).
		WithEnv(env...).
		WithLifecycle(waitForDrainHook()), nil
}

// templateHash identifies the pod template desiredDeployment makes for a,
// so a failure can be tied to the template it happened with. "" when the
// template cannot be built (the apply reports why).
func (c Config) templateHash(a *v1alpha1.Agent) string {
	d, err := c.desiredDeployment(a)
	if err != nil {
		return ""
	}
	h, err := hashOf(d.Spec.Template)
	if err != nil {
		return ""
	}
	return h[:16]
}

// agentEnv is the agent's environment with PORT set to its port. Apply
// keys env by name and refuses duplicates, so a repeated name keeps its
// last value (what the kubelet would use) and PORT always wins.
func agentEnv(env []corev1.EnvVar, port int32) ([]*corev1ac.EnvVarApplyConfiguration, error) {
	last := map[string]int{}
	for i, e := range env {
		last[e.Name] = i
	}
	out := make([]*corev1ac.EnvVarApplyConfiguration, 0, len(env)+1)
	for i, e := range env {
		if e.Name == "PORT" || last[e.Name] != i {
			continue
		}
		var ac corev1ac.EnvVarApplyConfiguration
		if err := convert(e, &ac); err != nil {
			return nil, fmt.Errorf("spec.container.env[%s]: %w", e.Name, err)
		}
		out = append(out, &ac)
	}
	return append(out, corev1ac.EnvVar().WithName("PORT").WithValue(strconv.Itoa(int(port)))), nil
}

// convert copies a core/v1 value into its apply configuration. They share
// one JSON shape, so every field (valueFrom sources, resource claims, fields
// added in later Kubernetes versions) carries over without a hand-written
// mapping that could drop one.
func convert(in, out any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, out)
}

// ownerReference makes the Agent the controller of an object, so deleting
// the Agent garbage-collects it and its changes requeue the Agent.
func ownerReference(a *v1alpha1.Agent) *metav1ac.OwnerReferenceApplyConfiguration {
	return metav1ac.OwnerReference().
		WithAPIVersion(v1alpha1.GroupVersion.String()).
		WithKind("Agent").
		WithName(a.Name).
		WithUID(a.UID).
		WithController(true).
		WithBlockOwnerDeletion(true)
}
