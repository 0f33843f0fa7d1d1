package v1alpha1

import (
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

func validAgent() *Agent {
	a := &Agent{}
	a.Name = "echo"
	a.Namespace = "default"
	a.Spec.Container.Command = []string{"./echo"}
	a.Spec.Container.Image = "ghcr.io/example/echo:1.0"
	a.Spec.Container.Port = 8080
	a.Spec.Concurrency = 10
	return a
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name           string
		mutate         func(*Agent)
		requireCommand bool
		defaulted      bool // run Default before Validate
		want           []string
	}{
		{name: "valid", mutate: func(*Agent) {}, requireCommand: true},
		{name: "valid after Default", mutate: func(*Agent) {}, requireCommand: true, defaulted: true},
		{name: "valid, image only, cluster mode", mutate: func(a *Agent) {
			a.Spec.Container.Command = nil
			a.Spec.Container.Image = "ghcr.io/example/echo:1.0"
		}},
		{name: "every protocol", mutate: func(a *Agent) { a.Spec.Protocol = ProtocolA2A }, requireCommand: true},
		{name: "max concurrency", mutate: func(a *Agent) { a.Spec.Concurrency = 1<<31 - 1 }, requireCommand: true, defaulted: true},

		{name: "missing name", mutate: func(a *Agent) { a.Name = "" },
			want: []string{"metadata.name: Required value: give the agent a name"}},
		{name: "bad name", mutate: func(a *Agent) { a.Name = "Echo_1" },
			want: []string{`metadata.name: Invalid value: "Echo_1": a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character`}},
		{name: "name starting with a digit", mutate: func(a *Agent) { a.Name = "1echo" },
			want: []string{`metadata.name: Invalid value: "1echo": a DNS-1035 label must`}},
		{name: "name too long", mutate: func(a *Agent) { a.Name = strings.Repeat("a", 64) },
			want: []string{"metadata.name: Invalid value: \"" + strings.Repeat("a", 64) + "\": must be no more than 63 characters"}},
		{name: "bad namespace", mutate: func(a *Agent) { a.Namespace = "My.NS" },
			want: []string{`metadata.namespace: Invalid value: "My.NS": a lowercase RFC 1123 label must consist of`}},

		{name: "bad protocol", mutate: func(a *Agent) { a.Spec.Protocol = "grpc" },
			want: []string{`spec.protocol: Unsupported value: "grpc": supported values: "http", "mcp", "a2a"`}},
		{name: "port missing", mutate: func(a *Agent) { a.Spec.Container.Port = 0 },
			want: []string{"spec.container.port: Invalid value: 0: set port to the TCP port the agent listens on (1-65535)"}},
		{name: "port too high", mutate: func(a *Agent) { a.Spec.Container.Port = 65536 },
			want: []string{"spec.container.port: Invalid value: 65536: set port to the TCP port the agent listens on (1-65535)"}},
		{name: "port bounds are inclusive", mutate: func(a *Agent) { a.Spec.Container.Port = 65535 }},
		{name: "missing command in local mode", requireCommand: true, mutate: func(a *Agent) {
			a.Spec.Container.Command = nil
			a.Spec.Container.Image = "ghcr.io/example/echo:1.0" // an image does not help locally
		}, want: []string{"spec.container.command: Required value: local mode runs command+args directly, from the agent file's directory: set command (e.g. [\"./run.sh\"]"}},
		{name: "no image in cluster mode, even with a command", mutate: func(a *Agent) { a.Spec.Container.Image = "" },
			want: []string{"spec.container.image: Required value: set image: the container image the agent runs on Kubernetes (local mode runs command instead)"}},
		{name: "no image is fine locally", requireCommand: true, mutate: func(a *Agent) { a.Spec.Container.Image = "" }},
		{name: "sidecar port in cluster mode", mutate: func(a *Agent) { a.Spec.Container.Port = 8012 },
			want: []string{"spec.container.port: Invalid value: 8012: ports 8012 and 8022 belong to the flint-proxy sidecar"}},
		{name: "sidecar port is fine locally", requireCommand: true, mutate: func(a *Agent) { a.Spec.Container.Port = 8022 }},
		{name: "reserved volume name", mutate: func(a *Agent) {
			a.Spec.Pod = &AgentPod{Volumes: []corev1.Volume{{Name: "flint-data"}}}
		}, want: []string{`spec.pod.volumes[0].name: Invalid value: "flint-data": volume names starting with flint- are used by Flint`}},
		{name: "mount of an undeclared volume", mutate: func(a *Agent) {
			a.Spec.Pod = &AgentPod{Volumes: []corev1.Volume{{Name: "data"}}}
			a.Spec.Container.VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data"}, {Name: "cache", MountPath: "/cache"}}
		}, want: []string{`spec.container.volumeMounts: Invalid value: "cache": every container.volumeMounts[].name must name a volume in pod.volumes`}},
		{name: "reserved pod label", mutate: func(a *Agent) {
			a.Spec.Pod = &AgentPod{Labels: map[string]string{"flint.dev/agent": "other", "team": "a"}}
		}, want: []string{`spec.pod.labels: Invalid value: "flint.dev/agent": pod label keys under flint.dev/`}},
		{name: "negative concurrency", mutate: func(a *Agent) { a.Spec.Concurrency = -1 },
			want: []string{"spec.concurrency: Invalid value: -1: concurrency must be 0 (unlimited) or a positive cap"}},

		{name: "min above max", mutate: func(a *Agent) {
			a.Spec.Scaling.MinReplicas, a.Spec.Scaling.MaxReplicas = ptr(int32(5)), ptr(int32(2))
		}, want: []string{"spec.scaling.minReplicas: Invalid value: 5: minReplicas (5) must not exceed maxReplicas (2)"}},
		{name: "min equal to max", mutate: func(a *Agent) {
			a.Spec.Scaling.MinReplicas, a.Spec.Scaling.MaxReplicas = ptr(int32(3)), ptr(int32(3))
		}},
		{name: "min above default max is fine (max follows min)", defaulted: true, mutate: func(a *Agent) {
			a.Spec.Scaling.MinReplicas = ptr(int32(30))
		}},
		{name: "negative min", mutate: func(a *Agent) { a.Spec.Scaling.MinReplicas = ptr(int32(-1)) },
			want: []string{"spec.scaling.minReplicas: Invalid value: -1: minReplicas must not be negative"}},
		{name: "zero max", mutate: func(a *Agent) { a.Spec.Scaling.MaxReplicas = ptr(int32(0)) },
			want: []string{"spec.scaling.maxReplicas: Invalid value: 0: maxReplicas must be at least 1"}},
		{name: "zero target", mutate: func(a *Agent) { a.Spec.Scaling.Target = ptr(int32(0)) },
			want: []string{"spec.scaling.target: Invalid value: 0: target must be at least 1"}},
		{name: "target above concurrency", mutate: func(a *Agent) { a.Spec.Scaling.Target = ptr(int32(11)) },
			want: []string{"spec.scaling.target: Invalid value: 11: target (11) must not exceed concurrency (10): replicas can never hold more"}},
		{name: "target equal to concurrency", mutate: func(a *Agent) { a.Spec.Scaling.Target = ptr(int32(10)) }},
		{name: "any target with unlimited concurrency", mutate: func(a *Agent) {
			a.Spec.Concurrency = 0
			a.Spec.Scaling.Target = ptr(int32(5000))
		}},
		{name: "scaleToZeroAfter zero", mutate: func(a *Agent) { a.Spec.Scaling.ScaleToZeroAfter = d(0) },
			want: []string{`spec.scaling.scaleToZeroAfter: Invalid value: "0s": scaleToZeroAfter must be positive`}},
		{name: "stableWindow too short", mutate: func(a *Agent) { a.Spec.Scaling.StableWindow = d(5 * time.Second) },
			want: []string{`spec.scaling.stableWindow: Invalid value: "5s": stableWindow must be between 6s and 1h0m0s`}},
		{name: "stableWindow too long", mutate: func(a *Agent) { a.Spec.Scaling.StableWindow = d(time.Hour + time.Second) },
			want: []string{`spec.scaling.stableWindow: Invalid value: "1h0m1s": stableWindow must be between 6s and 1h0m0s`}},
		{name: "stableWindow bounds are inclusive (min)", mutate: func(a *Agent) { a.Spec.Scaling.StableWindow = d(MinStableWindow) }},
		{name: "stableWindow bounds are inclusive (max)", mutate: func(a *Agent) { a.Spec.Scaling.StableWindow = d(MaxStableWindow) }},
		{name: "request timeout negative", mutate: func(a *Agent) { a.Spec.Timeouts.Request = d(-time.Second) },
			want: []string{`spec.timeouts.request: Invalid value: "-1s": request timeout must be positive`}},
		{name: "coldStart timeout zero", mutate: func(a *Agent) { a.Spec.Timeouts.ColdStart = d(0) },
			want: []string{`spec.timeouts.coldStart: Invalid value: "0s": coldStart timeout must be positive`}},

		{name: "every problem is reported", requireCommand: true, mutate: func(a *Agent) {
			a.Name = ""
			a.Spec.Protocol = "grpc"
			a.Spec.Container = AgentContainer{}
			a.Spec.Scaling.MinReplicas, a.Spec.Scaling.MaxReplicas = ptr(int32(5)), ptr(int32(2))
		}, want: []string{
			"metadata.name: Required value",
			"spec.protocol: Unsupported value",
			"spec.container.port: Invalid value: 0",
			"spec.container.command: Required value",
			"spec.scaling.minReplicas: Invalid value: 5: minReplicas (5) must not exceed maxReplicas (2)",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := validAgent()
			tc.mutate(a)
			if tc.defaulted {
				a.Default()
			}
			var got []string
			for _, e := range a.Validate(tc.requireCommand) {
				got = append(got, e.Error())
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d errors, want %d:\n%s", len(got), len(tc.want), strings.Join(got, "\n"))
			}
			for i, w := range tc.want {
				if !strings.HasPrefix(got[i], w) {
					t.Errorf("error %d:\n got %s\nwant prefix %s", i, got[i], w)
				}
			}
		})
	}
}

// TestValidateDoesNotMutate guards the contract that Validate only reads.
func TestValidateDoesNotMutate(t *testing.T) {
	a := validAgent()
	a.Spec.Scaling.MinReplicas = ptr(int32(5))
	b := a.DeepCopy()
	a.Validate(true)
	if a.Spec.Scaling.MaxReplicas != nil || !slices.Equal(a.Spec.Container.Command, b.Spec.Container.Command) || a.Namespace != b.Namespace {
		t.Fatalf("Validate changed the agent")
	}
}
