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
	agent, err := c.agentContainer(a)
	if err != nil {
		return nil, err
	}
	zero, surge := intstr.FromInt32(0), intstr.FromString("25%")
	return appsv1ac.Deployment(a.Name, a.Namespace).
		WithLabels(labelsFor(a)).
		WithOwnerReferences(ownerReference(a)).
		WithSpec(appsv1ac.DeploymentSpec().
			WithReplicas(DesiredReplicas(a)).
			WithSelector(metav1ac.LabelSelector().WithMatchLabels(selectorFor(a))).
			WithRevisionHistoryLimit(revisionHistoryLimit).
			// Never below the asked-for capacity during a rollout: a new
			// replica must be ready before an old one starts draining.
			WithStrategy(appsv1ac.DeploymentStrategy().
				WithType(appsv1.RollingUpdateDeploymentStrategyType).
				WithRollingUpdate(appsv1ac.RollingUpdateDeployment().
					WithMaxUnavailable(zero).WithMaxSurge(surge))).
			WithTemplate(corev1ac.PodTemplateSpec().
				WithLabels(labelsFor(a)).
				WithSpec(corev1ac.PodSpec().
					WithInitContainers(c.sidecarContainer(a)).
					WithContainers(agent).
					WithTerminationGracePeriodSeconds(int64(c.TerminationGracePeriod().Seconds())).
					// Service links put every Service of the namespace in
					// the environment: slow to start with many agents, and
					// none of the agent's business.
					WithEnableServiceLinks(false).
					// Agents run arbitrary code and have no use for API
					// credentials.
					WithAutomountServiceAccountToken(false)))), nil
}

// agentContainer is the user's container. It has no readiness probe: the
// sidecar probes the agent and the pod's readiness is the sidecar's.
func (c Config) agentContainer(a *v1alpha1.Agent) (*corev1ac.ContainerApplyConfiguration, error) {
	spec := a.Spec.Container
	env, err := agentEnv(spec.Env, spec.Port)
	if err != nil {
		return nil, err
	}
	ctr := corev1ac.Container().
		WithName(AgentContainerName).
		WithImage(spec.Image).
		WithEnv(env...).
		WithLifecycle(waitForDrainHook())
	if len(spec.Command) > 0 {
		ctr.WithCommand(spec.Command...)
	}
	if len(spec.Args) > 0 {
		ctr.WithArgs(spec.Args...)
	}
	if len(spec.Resources.Limits) > 0 || len(spec.Resources.Requests) > 0 || len(spec.Resources.Claims) > 0 {
		var res corev1ac.ResourceRequirementsApplyConfiguration
		if err := convert(spec.Resources, &res); err != nil {
			return nil, fmt.Errorf("spec.container.resources: %w", err)
		}
		ctr.WithResources(&res)
	}
	return ctr, nil
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
