package controller

import (
	"flag"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/flint-dev/flint/api/v1alpha1"
	"github.com/flint-dev/flint/internal/proxy"
)

// testAgent is a valid, defaulted agent.
func testAgent(ns, name string) *v1alpha1.Agent {
	a := &v1alpha1.Agent{}
	a.Namespace, a.Name = ns, name
	a.Spec.Container.Image = "example.com/echo:1"
	a.Spec.Container.Port = 8080
	a.Spec.Concurrency = 10
	a.Default()
	return a
}

func testConfig() Config {
	c := DefaultConfig("v1.2.3")
	c.GatewayURL = "https://agents.example.com/"
	return c
}

// parseSidecarArgs runs the manager's sidecar arguments through `flint
// proxy`'s own flag parsing and validation: the pod must start.
func parseSidecarArgs(t *testing.T, args []string) proxy.Config {
	t.Helper()
	if len(args) == 0 || args[0] != "proxy" {
		t.Fatalf("sidecar args %q do not start with the proxy subcommand", args)
	}
	cfg := proxy.DefaultConfig()
	fs := flag.NewFlagSet("proxy", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfg.RegisterFlags(fs)
	if err := fs.Parse(args[1:]); err != nil {
		t.Fatalf("flint proxy refuses %q: %v", args, err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("flint proxy refuses %q: %v", args, err)
	}
	return cfg
}

func TestSidecarArgsAreAcceptedByTheProxy(t *testing.T) {
	cfg := testConfig()
	cfg.SidecarQueueDepth = 4
	a := testAgent("agents", "echo")
	a.Spec.Container.ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{
		HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(8080)}}}
	a.Spec.Timeouts.Request.Duration = 90 * time.Second

	got := parseSidecarArgs(t, cfg.sidecarArgs(a))
	want := proxy.Config{
		ServingAddr: ":8012", AdminAddr: ":8022", UpstreamAddr: "127.0.0.1:8080",
		Concurrency: 10, QueueDepth: 4, RequestTimeout: 90 * time.Second, ProbePath: "/healthz",
		DrainDelay: cfg.DrainDelay, DrainTimeout: 90 * time.Second, TerminationGracePeriod: 100 * time.Second,
	}
	if got.ServingAddr != want.ServingAddr || got.AdminAddr != want.AdminAddr || got.UpstreamAddr != want.UpstreamAddr ||
		got.Concurrency != want.Concurrency || got.QueueDepth != want.QueueDepth || got.RequestTimeout != want.RequestTimeout ||
		got.ProbePath != want.ProbePath || got.DrainDelay != want.DrainDelay || got.DrainTimeout != want.DrainTimeout ||
		got.TerminationGracePeriod != want.TerminationGracePeriod {
		t.Errorf("sidecar config\n got %+v\nwant %+v", got, want)
	}

	// Unlimited concurrency: no queue (the proxy would refuse one), TCP probe.
	a.Spec.Concurrency = 0
	a.Spec.Container.ReadinessProbe = nil
	got = parseSidecarArgs(t, cfg.sidecarArgs(a))
	if got.QueueDepth != 0 || got.ProbePath != "" || got.Concurrency != 0 {
		t.Errorf("unlimited agent: queue %d, probe %q, concurrency %d", got.QueueDepth, got.ProbePath, got.Concurrency)
	}
}

func TestGracePeriodFollowsTheRequestTimeout(t *testing.T) {
	for _, tc := range []struct {
		name                      string
		delay, floor, margin, max time.Duration
		request                   time.Duration
		wantDrain, wantGrace      time.Duration
		wantCapped                bool
	}{
		{"default agent: delay + 300s requests + margin", 5 * time.Second, 30 * time.Second, 5 * time.Second, 15 * time.Minute,
			300 * time.Second, 300 * time.Second, 310 * time.Second, false},
		{"short requests keep the -drain-timeout floor", 5 * time.Second, 30 * time.Second, 5 * time.Second, 15 * time.Minute,
			10 * time.Second, 30 * time.Second, 40 * time.Second, false},
		// Rounded up, never down: the field has whole seconds.
		{"rounded up", 1500 * time.Millisecond, 10 * time.Second, 2 * time.Second, 15 * time.Minute,
			10 * time.Second, 10 * time.Second, 14 * time.Second, false},
		{"capped: the drain gives way", 5 * time.Second, 30 * time.Second, 5 * time.Second, 15 * time.Minute,
			2 * time.Hour, 890 * time.Second, 900 * time.Second, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.DrainDelay, cfg.DrainTimeout, cfg.ShutdownMargin, cfg.MaxTerminationGracePeriod = tc.delay, tc.floor, tc.margin, tc.max
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			a := testAgent("ns", "a")
			a.Spec.Timeouts.Request.Duration = tc.request
			b := cfg.shutdownBudget(a)
			if b.DrainTimeout != tc.wantDrain || b.Grace != tc.wantGrace || b.Capped != tc.wantCapped {
				t.Errorf("budget %+v, want drain %s grace %s capped %t", b, tc.wantDrain, tc.wantGrace, tc.wantCapped)
			}
			// The sidecar checks the same budget itself and must start.
			got := parseSidecarArgs(t, cfg.sidecarArgs(a))
			if got.DrainTimeout != tc.wantDrain || got.TerminationGracePeriod != tc.wantGrace {
				t.Errorf("sidecar drain %s grace %s", got.DrainTimeout, got.TerminationGracePeriod)
			}
			spec, err := cfg.podSpec(a)
			if err != nil {
				t.Fatal(err)
			}
			if g := spec.TerminationGracePeriodSeconds; g == nil || *g != int64(tc.wantGrace.Seconds()) {
				t.Errorf("terminationGracePeriodSeconds %v, want %s", g, tc.wantGrace)
			}
		})
	}
}

func TestMCPSidecarHasNoRequestTimeout(t *testing.T) {
	a := testAgent("ns", "mcp")
	a.Spec.Protocol = v1alpha1.ProtocolMCP
	got := parseSidecarArgs(t, testConfig().sidecarArgs(a))
	if got.RequestTimeout != 0 {
		t.Errorf("MCP sidecar request timeout %s: session streams would be cut", got.RequestTimeout)
	}
	// Its replicas still get the request timeout to drain.
	if got.DrainTimeout != a.Spec.RequestTimeout() {
		t.Errorf("MCP drain %s, want the request timeout %s", got.DrainTimeout, a.Spec.RequestTimeout())
	}
}

func TestConfigValidateNamesTheFlag(t *testing.T) {
	cfg := Config{GatewayURL: "agents.example.com", DrainDelay: -time.Second, ShutdownMargin: time.Second, SidecarQueueDepth: -1}
	err := cfg.Validate()
	if err == nil {
		t.Fatal("invalid config accepted")
	}
	for _, flag := range []string{"-sidecar-image", "-gateway-url", "-drain-delay", "-drain-timeout", "-shutdown-margin",
		"-sidecar-queue-depth", "-max-concurrent-reconciles", "-max-termination-grace-period"} {
		if !strings.Contains(err.Error(), flag+"=") && !strings.Contains(err.Error(), flag+" ") {
			t.Errorf("error does not name %s: %v", flag, err)
		}
	}
	if err := DefaultConfig("").Validate(); err != nil {
		t.Errorf("defaults are invalid: %v", err)
	}
	if img := DefaultConfig("dev").SidecarImage; img != DefaultSidecarRepository+":latest" {
		t.Errorf("dev build sidecar image %q", img)
	}
	if img := DefaultConfig("v1.2.3").SidecarImage; img != DefaultSidecarRepository+":v1.2.3" {
		t.Errorf("release sidecar image %q", img)
	}
}

func TestAgentEnvSetsPortAndDropsDuplicates(t *testing.T) {
	env, err := agentEnv([]corev1.EnvVar{
		{Name: "A", Value: "1"}, {Name: "PORT", Value: "9"}, {Name: "A", Value: "2"},
		{Name: "SECRET", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: "s"}, Key: "k"}}},
	}, 8080)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range env {
		v := ""
		if e.Value != nil {
			v = *e.Value
		}
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			v = "secret:" + *e.ValueFrom.SecretKeyRef.Name + "/" + *e.ValueFrom.SecretKeyRef.Key
		}
		got = append(got, *e.Name+"="+v)
	}
	want := []string{"A=2", "SECRET=secret:s/k", "PORT=8080"}
	if !slices.Equal(got, want) {
		t.Errorf("env %q, want %q", got, want)
	}
}

func TestAgentContainerCarriesResources(t *testing.T) {
	a := testAgent("ns", "a")
	a.Spec.Container.Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m")}
	ctr, err := testConfig().agentContainer(a)
	if err != nil {
		t.Fatal(err)
	}
	if ctr.Resources == nil || ctr.Resources.Requests == nil || (*ctr.Resources.Requests).Cpu().MilliValue() != 250 {
		t.Errorf("resources not carried over: %+v", ctr.Resources)
	}
	if p := ctr.ReadinessProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Port.IntVal != v1alpha1.AdminPort {
		t.Errorf("the agent container's readiness probe %+v: want the sidecar's /readyz (the sidecar probes the agent)", p)
	}
}

// TestProxyDefaultsUseTheContractPorts keeps the sidecar's own flag
// defaults (internal/proxy does not import the API package, so it writes
// the numbers itself) on the ports the cluster contract fixes.
func TestProxyDefaultsUseTheContractPorts(t *testing.T) {
	for addr, want := range map[string]int{proxy.DefaultServingAddr: v1alpha1.ServingPort, proxy.DefaultAdminAddr: v1alpha1.AdminPort} {
		if _, port, err := net.SplitHostPort(addr); err != nil || port != strconv.Itoa(want) {
			t.Errorf("proxy default %q: want port %d (api/v1alpha1)", addr, want)
		}
	}
}
