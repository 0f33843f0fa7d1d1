package controller

import (
	"flag"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/flint-dev/flint/api/v1alpha1"
	"github.com/flint-dev/flint/internal/mcp"
	"github.com/flint-dev/flint/internal/mcp/bridge"
)

func stdioTestAgent() *v1alpha1.Agent {
	a := testAgent("ns", "files")
	a.Spec.Protocol = v1alpha1.ProtocolMCP
	a.Annotations = map[string]string{mcp.AnnotationTransport: mcp.TransportStdio}
	a.Spec.Container.Command = []string{"python3", "server.py"}
	a.Spec.Container.Args = []string{"--root", "/data"}
	return a
}

func TestStdioAgentRunsBehindTheBridge(t *testing.T) {
	cfg := testConfig()
	a := stdioTestAgent()
	pod, err := render(cfg, a)
	if err != nil {
		t.Fatal(err)
	}
	s := pod.Spec
	if len(s.InitContainers) != 2 || s.InitContainers[0].Name != SidecarContainerName || s.InitContainers[1].Name != BridgeInstallerName {
		t.Fatalf("init containers %v, want the sidecar then the installer", s.InitContainers)
	}
	inst := s.InitContainers[1]
	if inst.Image != cfg.SidecarImage || !slices.Equal(inst.Command, []string{DefaultFlintBinary, "stdio-bridge", "-install-to=/.flint-bin/flint"}) ||
		inst.RestartPolicy != nil || len(inst.VolumeMounts) != 1 || inst.VolumeMounts[0].Name != "flint-bin" {
		t.Errorf("installer %+v", inst)
	}
	if len(s.Volumes) != 1 || s.Volumes[0].Name != "flint-bin" || s.Volumes[0].EmptyDir == nil {
		t.Errorf("volumes %+v", s.Volumes)
	}
	ag := s.Containers[0]
	cmd := ag.Command
	sep := slices.Index(cmd, "--")
	if sep < 0 || cmd[0] != "/.flint-bin/flint" || cmd[1] != "stdio-bridge" ||
		!slices.Equal(cmd[sep+1:], []string{"python3", "server.py", "--root", "/data"}) || len(ag.Args) != 0 {
		t.Fatalf("agent command %q args %q: the bridge must run the server's command", cmd, ag.Args)
	}
	// The bridge accepts its flags, and its shutdown fits the margin the
	// grace period leaves after the sidecar's drain.
	bcfg := bridge.DefaultConfig()
	fs := flag.NewFlagSet("stdio-bridge", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	bcfg.RegisterFlags(fs)
	if err := fs.Parse(cmd[2:]); err != nil {
		t.Fatalf("bridge refuses %q: %v", cmd, err)
	}
	if err := bcfg.Validate(); err != nil {
		t.Fatalf("bridge refuses %q: %v", cmd, err)
	}
	if !slices.Equal(bcfg.AllowedHosts, []string{"*"}) {
		t.Errorf("bridge allowed hosts %q: the sidecar passes on any Host the gateway accepted", bcfg.AllowedHosts)
	}
	if bcfg.GracePeriod > cfg.ShutdownMargin {
		t.Errorf("bridge grace %s exceeds the shutdown margin %s", bcfg.GracePeriod, cfg.ShutdownMargin)
	}
	if len(ag.VolumeMounts) != 1 || !ag.VolumeMounts[0].ReadOnly || ag.VolumeMounts[0].MountPath != "/.flint-bin" {
		t.Errorf("agent mounts %+v", ag.VolumeMounts)
	}
	if got := parseSidecarArgs(t, cfg.sidecarArgs(a)); got.ProbePath != "/healthz" || got.RequestTimeout != 0 {
		t.Errorf("sidecar probe %q request timeout %s: ready when the bridge can start a child; no timeout on sessions", got.ProbePath, got.RequestTimeout)
	}
}

func TestStdioAgentNeedsACommand(t *testing.T) {
	a := stdioTestAgent()
	a.Spec.Container.Command = nil
	if _, err := stdioAgent(a); err == nil || !strings.Contains(err.Error(), "spec.container.command") {
		t.Errorf("stdio agent without a command: %v", err)
	}
	a = stdioTestAgent()
	a.Annotations[mcp.AnnotationTransport] = "pipes"
	if _, err := stdioAgent(a); err == nil {
		t.Error("unknown transport accepted")
	}
	if _, err := render(testConfig(), a); err == nil {
		t.Error("a Deployment built for an unknown transport")
	}
}
