package controller

import (
	"fmt"
	"path"
	"time"

	corev1 "k8s.io/api/core/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"

	"github.com/flint-dev/flint/api/v1alpha1"
	"github.com/flint-dev/flint/internal/mcp"
)

// A stdio MCP server (annotation flint.dev/mcp-transport: stdio) runs on
// Kubernetes as it does locally: behind `flint stdio-bridge`, which serves
// streamable HTTP on $PORT and starts the server's command once per
// session. The bridge must run inside the agent's own container (it starts
// the agent's command, from the agent's image), so an init container of the
// flint image copies the flint binary into an emptyDir the agent container
// mounts, and the manager makes the bridge the container's command. The
// bridge is PID 1 there: it reaps orphans and stops its children in the
// spec's order on SIGTERM.
const (
	// DefaultFlintBinary is where the flint image keeps the flint binary.
	DefaultFlintBinary = "/usr/local/bin/flint"
	// BridgeInstallerName is the init container that copies the binary.
	BridgeInstallerName = "flint-install-bridge"
	// bridgeVolume is the emptyDir the binary is copied into.
	bridgeVolume = v1alpha1.ReservedPrefix + "bin"
	// bridgeDir is where the agent container mounts it.
	bridgeDir = "/.flint-bin"
)

// stdioAgent reports whether a runs behind the stdio bridge; an invalid
// transport annotation, or a stdio agent without a command, is an error
// for the Agent's status.
func stdioAgent(a *v1alpha1.Agent) (bool, error) {
	stdio, err := mcp.UsesStdio(a)
	if err != nil || !stdio {
		return false, err
	}
	if len(a.Spec.Container.Command) == 0 {
		return false, fmt.Errorf("spec.container.command: set the stdio server's command: the bridge starts it once per session (it cannot use the image's entrypoint)")
	}
	return true, nil
}

// bridgeCommand is the agent container's command for a stdio server. The
// bridge gets SIGTERM only after the sidecar has drained (the preStop hook
// waits for it), so calls are over by then and what it needs is time to stop
// its children: the shutdown margin, the least that is left of the grace period.
func (c Config) bridgeCommand(a *v1alpha1.Agent) []string {
	stopWait := max(250*time.Millisecond, (c.ShutdownMargin-2*time.Second)/2)
	argv := []string{
		path.Join(bridgeDir, "flint"), "stdio-bridge",
		"-grace-period=" + c.ShutdownMargin.String(),
		"-child-stop-wait=" + stopWait.String(),
		// Only the pod's own sidecar reaches the bridge on loopback, and it
		// passes on the Host the client gave the gateway: DNS-rebinding
		// protection is for a laptop's browser, not a pod, and the gateway
		// applies its own.
		"-allowed-hosts=*",
		"--",
	}
	return append(append(argv, a.Spec.Container.Command...), a.Spec.Container.Args...)
}

// bridgeInstaller is the init container that copies the flint binary into
// the shared volume. It runs as the sidecar does: restricted, read-only.
func (c Config) bridgeInstaller(a *v1alpha1.Agent) *corev1ac.ContainerApplyConfiguration {
	return corev1ac.Container().
		WithName(BridgeInstallerName).
		WithImage(c.SidecarImage).
		WithCommand(c.FlintBinary, "stdio-bridge", "-install-to="+path.Join(bridgeDir, "flint")).
		WithVolumeMounts(corev1ac.VolumeMount().WithName(bridgeVolume).WithMountPath(bridgeDir)).
		WithResources(corev1ac.ResourceRequirements().WithRequests(corev1.ResourceList{
			corev1.ResourceCPU:    sidecarCPURequest,
			corev1.ResourceMemory: sidecarMemoryRequest,
		})).
		WithSecurityContext(sidecarSecurityContext(a))
}

// bridgeVolumeSource is the emptyDir the binary goes into; its size limit
// leaves room for the binary and nothing else.
func bridgeVolumeSource() *corev1ac.VolumeApplyConfiguration {
	return corev1ac.Volume().WithName(bridgeVolume).
		WithEmptyDir(corev1ac.EmptyDirVolumeSource().WithSizeLimit(bridgeVolumeLimit))
}
