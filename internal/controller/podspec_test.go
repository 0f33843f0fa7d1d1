package controller

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/flint-dev/flint/api/v1alpha1"
)

// fullAgent sets every pod-level and container field an Agent can carry.
func fullAgent() *v1alpha1.Agent {
	a := testAgent("ns", "full")
	gpu := corev1.ResourceName("nvidia.com/gpu")
	a.Spec.Container.ImagePullPolicy = corev1.PullAlways
	a.Spec.Container.WorkingDir = "/app"
	a.Spec.Container.EnvFrom = []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{
		LocalObjectReference: corev1.LocalObjectReference{Name: "api-keys"}}}}
	a.Spec.Container.Resources = corev1.ResourceRequirements{
		Limits: corev1.ResourceList{gpu: resource.MustParse("1")}, Requests: corev1.ResourceList{gpu: resource.MustParse("1")}}
	a.Spec.Container.VolumeMounts = []corev1.VolumeMount{{Name: "models", MountPath: "/models", ReadOnly: true}}
	a.Spec.Container.LivenessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{
		Exec: &corev1.ExecAction{Command: []string{"/bin/alive"}}}, PeriodSeconds: 7}
	a.Spec.Container.StartupProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{
		TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(8080)}}, FailureThreshold: 30}
	a.Spec.Container.SecurityContext = &corev1.SecurityContext{ReadOnlyRootFilesystem: ptr(true)}
	a.Spec.Pod = &v1alpha1.AgentPod{
		Labels:             map[string]string{"team": "search"},
		Annotations:        map[string]string{"prometheus.io/scrape": "false"},
		ServiceAccountName: "agent-sa",
		ImagePullSecrets:   []corev1.LocalObjectReference{{Name: "regcred"}},
		Volumes: []corev1.Volume{{Name: "models", VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "models"}}}},
		NodeSelector: map[string]string{"accelerator": "a100"},
		Tolerations:  []corev1.Toleration{{Key: "nvidia.com/gpu", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}},
		Affinity: &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{{
			Weight: 1, PodAffinityTerm: corev1.PodAffinityTerm{TopologyKey: "kubernetes.io/hostname"}}}}},
		TopologySpreadConstraints: []corev1.TopologySpreadConstraint{{MaxSkew: 1, TopologyKey: "topology.kubernetes.io/zone",
			WhenUnsatisfiable: corev1.ScheduleAnyway}},
		RuntimeClassName:  ptr("nvidia"),
		PriorityClassName: "system-cluster-critical", // exists in every cluster
		SecurityContext:   &corev1.PodSecurityContext{FSGroup: ptr[int64](2000)},
	}
	return a
}

func TestPodSpecPassesTheAgentsFieldsThrough(t *testing.T) {
	a := fullAgent()
	pod, err := render(testConfig(), a)
	if err != nil {
		t.Fatal(err)
	}
	p := a.Spec.Pod
	if pod.Labels["team"] != "search" || pod.Labels[v1alpha1.LabelAgent] != "full" || pod.Annotations["prometheus.io/scrape"] != "false" {
		t.Errorf("pod labels %v annotations %v", pod.Labels, pod.Annotations)
	}
	s := pod.Spec
	if s.ServiceAccountName != "agent-sa" || !slices.Equal(s.ImagePullSecrets, p.ImagePullSecrets) ||
		len(s.Volumes) != 1 || s.Volumes[0].PersistentVolumeClaim == nil || s.NodeSelector["accelerator"] != "a100" ||
		len(s.Tolerations) != 1 || s.Affinity == nil || s.Affinity.PodAntiAffinity == nil || len(s.TopologySpreadConstraints) != 1 ||
		deref(s.RuntimeClassName) != "nvidia" || s.PriorityClassName != "system-cluster-critical" {
		t.Errorf("pod-level fields not carried over: %+v", s)
	}
	if s.AutomountServiceAccountToken == nil || *s.AutomountServiceAccountToken {
		t.Error("the API token must stay unmounted unless the Agent asks for it")
	}
	if sc := s.SecurityContext; sc == nil || deref(sc.FSGroup) != 2000 || !deref(sc.RunAsNonRoot) ||
		sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod security context %+v: the Agent's fields plus the restricted defaults", sc)
	}
	ag := s.Containers[0]
	if ag.ImagePullPolicy != corev1.PullAlways || ag.WorkingDir != "/app" || len(ag.EnvFrom) != 1 ||
		!ag.Resources.Limits.Name("nvidia.com/gpu", resource.DecimalSI).Equal(resource.MustParse("1")) ||
		len(ag.VolumeMounts) != 1 || ag.VolumeMounts[0].MountPath != "/models" ||
		ag.LivenessProbe == nil || ag.LivenessProbe.Exec == nil || ag.LivenessProbe.PeriodSeconds != 7 ||
		ag.StartupProbe == nil || ag.StartupProbe.TCPSocket == nil || ag.StartupProbe.FailureThreshold != 30 {
		t.Errorf("container fields not carried over: %+v", ag)
	}
	if sc := ag.SecurityContext; sc == nil || !deref(sc.ReadOnlyRootFilesystem) || deref(sc.AllowPrivilegeEscalation) ||
		sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
		t.Errorf("agent security context %+v", sc)
	}

	a.Spec.Pod.AutomountServiceAccountToken = ptr(true)
	if pod, _ = render(testConfig(), a); !deref(pod.Spec.AutomountServiceAccountToken) {
		t.Error("an Agent that asks for its API token must get it")
	}
}

// TestReadinessProbeIsNeverDropped: probes the sidecar can run exactly are
// mirrored by it (fast start, no kubelet probe on the agent); the others
// are run by the kubelet on the agent container as written.
func TestReadinessProbeIsNeverDropped(t *testing.T) {
	httpGet := func(port intstr.IntOrString, path string) *corev1.Probe {
		return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: port}}}
	}
	for _, tc := range []struct {
		name        string
		probe       *corev1.Probe
		sidecarPath string
		kubelet     bool
	}{
		{"none: the sidecar checks the port", nil, "", false},
		{"http on the agent's port", httpGet(intstr.FromInt32(8080), "/ready"), "/ready", false},
		{"http without a path", httpGet(intstr.FromInt32(8080), ""), "/", false},
		{"tcp on the agent's port", &corev1.Probe{ProbeHandler: corev1.ProbeHandler{
			TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(8080)}}}, "", false},
		{"http on another port", httpGet(intstr.FromInt32(9090), "/ready"), "", true},
		{"http on a named port", httpGet(intstr.FromString("health"), "/ready"), "", true},
		{"https", &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
			Path: "/ready", Port: intstr.FromInt32(8080), Scheme: corev1.URISchemeHTTPS}}}, "", true},
		{"http with headers", &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
			Path: "/ready", Port: intstr.FromInt32(8080), HTTPHeaders: []corev1.HTTPHeader{{Name: "X", Value: "y"}}}}}, "", true},
		{"exec", &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"ready"}}}}, "", true},
		{"grpc", &corev1.Probe{ProbeHandler: corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: 8080}}}, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := testAgent("ns", "p")
			a.Spec.Container.ReadinessProbe = tc.probe
			cfg := testConfig()
			if got := parseSidecarArgs(t, cfg.sidecarArgs(a)).ProbePath; got != tc.sidecarPath {
				t.Errorf("sidecar probe path %q, want %q", got, tc.sidecarPath)
			}
			pod, err := render(cfg, a)
			if err != nil {
				t.Fatal(err)
			}
			got := pod.Spec.Containers[0].ReadinessProbe
			if tc.kubelet && got.String() != tc.probe.String() {
				t.Errorf("kubelet probe %v, want the Agent's %v as written", got, tc.probe)
			}
			if !tc.kubelet && (got == nil || got.HTTPGet == nil || got.HTTPGet.Port.IntVal != v1alpha1.AdminPort) {
				t.Errorf("agent container readiness probe %+v, want the sidecar's /readyz (the sidecar mirrors the Agent's)", got)
			}
		})
	}
}

func TestRestrictedByDefaultUnlessTheAgentSaysOtherwise(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(a *v1alpha1.Agent)
		check  func(t *testing.T, pod *corev1.PodSecurityContext, agent, sidecar *corev1.SecurityContext)
	}{
		{"defaults", func(*v1alpha1.Agent) {}, func(t *testing.T, pod *corev1.PodSecurityContext, agent, sidecar *corev1.SecurityContext) {
			if !deref(pod.RunAsNonRoot) || pod.RunAsUser != nil || pod.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
				t.Errorf("pod %+v", pod)
			}
			for name, c := range map[string]*corev1.SecurityContext{"agent": agent, "sidecar": sidecar} {
				if deref(c.AllowPrivilegeEscalation) || !slices.Equal(c.Capabilities.Drop, []corev1.Capability{"ALL"}) || c.RunAsUser != nil {
					t.Errorf("%s %+v: no escalation, no capabilities, no UID imposed", name, c)
				}
			}
			if !deref(sidecar.RunAsNonRoot) || sidecar.SeccompProfile == nil || !deref(sidecar.ReadOnlyRootFilesystem) {
				t.Errorf("sidecar %+v", sidecar)
			}
		}},
		{"the Agent's own choices stay", func(a *v1alpha1.Agent) {
			a.Spec.Pod = &v1alpha1.AgentPod{SecurityContext: &corev1.PodSecurityContext{
				RunAsUser: ptr[int64](1000), SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeUnconfined}}}
			a.Spec.Container.SecurityContext = &corev1.SecurityContext{AllowPrivilegeEscalation: ptr(true),
				Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"NET_ADMIN"}, Drop: []corev1.Capability{"MKNOD"}}}
		}, func(t *testing.T, pod *corev1.PodSecurityContext, agent, sidecar *corev1.SecurityContext) {
			if deref(pod.RunAsUser) != 1000 || pod.SeccompProfile.Type != corev1.SeccompProfileTypeUnconfined {
				t.Errorf("pod %+v", pod)
			}
			if !deref(agent.AllowPrivilegeEscalation) || !slices.Equal(agent.Capabilities.Drop, []corev1.Capability{"MKNOD"}) {
				t.Errorf("agent %+v", agent)
			}
			if deref(sidecar.AllowPrivilegeEscalation) || sidecar.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
				t.Errorf("the sidecar stays restricted: %+v", sidecar)
			}
		}},
		{"root on request", func(a *v1alpha1.Agent) {
			a.Spec.Pod = &v1alpha1.AgentPod{SecurityContext: &corev1.PodSecurityContext{RunAsUser: ptr[int64](0)}}
		}, func(t *testing.T, pod *corev1.PodSecurityContext, agent, sidecar *corev1.SecurityContext) {
			if pod.RunAsNonRoot != nil {
				t.Errorf("runAsNonRoot forced on an Agent that runs as root: %+v", pod)
			}
			if deref(sidecar.RunAsUser) == 0 || !deref(sidecar.RunAsNonRoot) {
				t.Errorf("the sidecar must not inherit root: %+v", sidecar)
			}
		}},
		{"privileged keeps its escalation", func(a *v1alpha1.Agent) {
			a.Spec.Container.SecurityContext = &corev1.SecurityContext{Privileged: ptr(true)}
		}, func(t *testing.T, pod *corev1.PodSecurityContext, agent, sidecar *corev1.SecurityContext) {
			if agent.AllowPrivilegeEscalation != nil || len(agent.Capabilities.Drop) != 0 {
				t.Errorf("privileged agent %+v: the API refuses privileged without escalation", agent)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := testAgent("ns", "s")
			tc.mutate(a)
			pod, err := render(testConfig(), a)
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, pod.Spec.SecurityContext, pod.Spec.Containers[0].SecurityContext, pod.Spec.InitContainers[0].SecurityContext)
		})
	}
}

// render is the agent's pod template as a core/v1 object.
func render(cfg Config, a *v1alpha1.Agent) (*corev1.PodTemplateSpec, error) {
	d, err := cfg.desiredDeployment(a)
	if err != nil {
		return nil, err
	}
	var tmpl corev1.PodTemplateSpec
	return &tmpl, convert(d.Spec.Template, &tmpl)
}
