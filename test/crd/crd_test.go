// Package crd tests the Agent CRD in deploy/crds against a real
// kube-apiserver: it is served, the API server applies its defaults, its
// CEL rules refuse what api/v1alpha1's Validate refuses with the same
// messages, and its status and scale subresources work.
package crd

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/flint-dev/flint/api/v1alpha1"
	"github.com/flint-dev/flint/internal/testenv"
)

// env is shared by every test in the package: one control plane start
// (seconds on 2 cores) instead of one per test; tests use own namespaces.
var env *testenv.Env

func TestMain(m *testing.M) {
	ctrllog.SetLogger(logr.Discard())
	var err error
	begin := time.Now()
	if env, err = testenv.New(testenv.Options{}); err != nil {
		fmt.Fprintln(os.Stderr, "testenv:", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "testenv: control plane up in %s\n", time.Since(begin).Round(time.Millisecond))
	code := m.Run()
	if err := env.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "testenv:", err)
		code = 1
	}
	os.Exit(code)
}

// minimal is the smallest Agent the API server accepts.
func minimal(ns, name string) *v1alpha1.Agent {
	return &v1alpha1.Agent{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: v1alpha1.AgentSpec{Container: v1alpha1.AgentContainer{
			Image: "ghcr.io/example/echo:1.0", Port: 8080,
		}},
	}
}

func TestServerAppliesDefaults(t *testing.T) {
	ctx := t.Context()
	ns := env.Namespace(t)
	a := minimal(ns, "echo")
	if err := env.Client.Create(ctx, a); err != nil {
		t.Fatalf("create: %v", err)
	}
	got := &v1alpha1.Agent{}
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(a), got); err != nil {
		t.Fatalf("get: %v", err)
	}
	s := got.Spec
	check := func(field string, got, want any) {
		t.Helper()
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s = %v, want %v", field, got, want)
		}
	}
	check("protocol", s.Protocol, v1alpha1.ProtocolHTTP)
	check("scaling.minReplicas", deref(s.Scaling.MinReplicas), v1alpha1.DefaultMinReplicas)
	check("scaling.scaleToZeroAfter", durationOf(s.Scaling.ScaleToZeroAfter), v1alpha1.DefaultScaleToZeroAfter)
	check("scaling.stableWindow", durationOf(s.Scaling.StableWindow), v1alpha1.DefaultStableWindow)
	check("timeouts.request", durationOf(s.Timeouts.Request), v1alpha1.DefaultRequestTimeout)
	check("timeouts.coldStart", durationOf(s.Timeouts.ColdStart), v1alpha1.DefaultColdStartTimeout)
	// The scale subresource needs a spec replicas value; 0 means "no decision yet".
	check("scaling.replicas", deref(s.Scaling.Replicas), int32(0))
	// These depend on other fields, so only Default() sets them.
	if s.Scaling.MaxReplicas != nil || s.Scaling.Target != nil {
		t.Errorf("maxReplicas/target defaulted by the server: %+v", s.Scaling)
	}

	// Whatever the server filled in, Go's Default() agrees with it: an Agent
	// defaulted locally equals one defaulted by the server and then locally.
	local := minimal(ns, "echo")
	local.Default()
	got.Default()
	got.Spec.Scaling.Replicas = nil // the server's 0 is the scale subresource's, not a bound
	if l, g := asJSON(t, local.Spec), asJSON(t, got.Spec); l != g {
		t.Errorf("server and Go defaults differ:\nserver+Go: %s\nGo only:   %s", g, l)
	}
}

// TestValidAgentsAccepted covers the edges of every rule from the valid side.
func TestValidAgentsAccepted(t *testing.T) {
	ns := env.Namespace(t)
	for _, tc := range []struct {
		name   string
		mutate func(*v1alpha1.Agent)
	}{
		{"everything set", func(a *v1alpha1.Agent) {
			a.Spec.Protocol = v1alpha1.ProtocolMCP
			a.Spec.Container.Command = []string{"echo-agent"}
			a.Spec.Concurrency = 10
			a.Spec.Scaling = v1alpha1.Scaling{
				MinReplicas: ptr.To[int32](1), MaxReplicas: ptr.To[int32](5), Target: ptr.To[int32](7),
				ScaleToZeroAfter: dur("45s"), StableWindow: dur("2m30s"),
			}
			a.Spec.Timeouts = v1alpha1.Timeouts{Request: dur("10m"), ColdStart: dur("1.5m")}
		}},
		{"image and command", func(a *v1alpha1.Agent) { a.Spec.Container.Command = []string{"./run.sh"} }},
		{"every pod and container field", func(a *v1alpha1.Agent) {
			gpu := corev1.ResourceName("nvidia.com/gpu")
			a.Spec.Container.EnvFrom = []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{
				LocalObjectReference: corev1.LocalObjectReference{Name: "keys"}}}}
			a.Spec.Container.Resources.Limits = corev1.ResourceList{gpu: resource.MustParse("1")}
			a.Spec.Container.VolumeMounts = []corev1.VolumeMount{{Name: "models", MountPath: "/models"}}
			a.Spec.Container.ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: 9090}}}
			a.Spec.Container.LivenessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}}}
			a.Spec.Container.StartupProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(8080)}}}
			a.Spec.Container.SecurityContext = &corev1.SecurityContext{RunAsUser: ptr.To[int64](1000)}
			a.Spec.Pod = &v1alpha1.AgentPod{
				Labels: map[string]string{"team": "a"}, Annotations: map[string]string{"note": "x"},
				ServiceAccountName: "agent", ImagePullSecrets: []corev1.LocalObjectReference{{Name: "regcred"}},
				Volumes:      []corev1.Volume{{Name: "models", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
				NodeSelector: map[string]string{"gpu": "a100"},
				Tolerations:  []corev1.Toleration{{Key: "gpu", Operator: corev1.TolerationOpExists}},
				Affinity: &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
					NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{{
						Key: "zone", Operator: corev1.NodeSelectorOpIn, Values: []string{"a"}}}}}}}},
				TopologySpreadConstraints: []corev1.TopologySpreadConstraint{{MaxSkew: 1, TopologyKey: "zone", WhenUnsatisfiable: corev1.ScheduleAnyway}},
				RuntimeClassName:          ptr.To("nvidia"), PriorityClassName: "high",
				SecurityContext: &corev1.PodSecurityContext{FSGroup: ptr.To[int64](2000)},
			}
		}},
		{"min equals max", func(a *v1alpha1.Agent) {
			a.Spec.Scaling.MinReplicas, a.Spec.Scaling.MaxReplicas = ptr.To[int32](3), ptr.To[int32](3)
		}},
		// maxReplicas then defaults to max(10, minReplicas), as locally.
		{"large min without max", func(a *v1alpha1.Agent) { a.Spec.Scaling.MinReplicas = ptr.To[int32](20) }},
		{"target equals concurrency", func(a *v1alpha1.Agent) {
			a.Spec.Concurrency, a.Spec.Scaling.Target = 4, ptr.To[int32](4)
		}},
		{"target above unlimited concurrency", func(a *v1alpha1.Agent) { a.Spec.Scaling.Target = ptr.To[int32](500) }},
		{"shortest stable window", func(a *v1alpha1.Agent) { a.Spec.Scaling.StableWindow = dur("6s") }},
		{"longest stable window", func(a *v1alpha1.Agent) { a.Spec.Scaling.StableWindow = dur("1h") }},
		{"port bounds", func(a *v1alpha1.Agent) { a.Spec.Container.Port = 65535 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := minimal(ns, strings.ReplaceAll(tc.name, " ", "-"))
			tc.mutate(a)
			if errs := a.Validate(false); len(errs) > 0 {
				t.Fatalf("Go validation refuses the case itself: %v", errs)
			}
			if err := env.Client.Create(t.Context(), a); err != nil {
				t.Fatalf("API server refused a valid agent: %v", err)
			}
		})
	}
}

func asJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func deref[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

func durationOf(d *metav1.Duration) any {
	if d == nil {
		return nil
	}
	return d.Duration
}

func dur(s string) *metav1.Duration {
	d, err := time.ParseDuration(s)
	if err != nil {
		panic(err)
	}
	return &metav1.Duration{Duration: d}
}
