package testenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// controllerManager is a kube-controller-manager child process: what turns
// Deployments into ReplicaSets and Pods, garbage-collects objects whose
// owner is gone, finishes namespace deletion and creates default
// ServiceAccounts. There is still no scheduler and no kubelet, so Pods stay
// Pending; tests that need running replicas bring their own node agent.
type controllerManager struct {
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed when the process has exited
	waitErr error         // valid after done is closed
}

// startControllerManager runs kube-controller-manager against te's API
// server as a system:masters user of its own, logging to dir.
func startControllerManager(te *envtest.Environment, binary, dir string) (*controllerManager, error) {
	user, err := te.AddUser(envtest.User{Name: "flint-testenv-kcm", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return nil, fmt.Errorf("provision kube-controller-manager user: %w", err)
	}
	kubeconfig, err := user.KubeConfig()
	if err != nil {
		return nil, fmt.Errorf("kube-controller-manager kubeconfig: %w", err)
	}
	kubeconfigPath := filepath.Join(dir, "kube-controller-manager.kubeconfig")
	if err := os.WriteFile(kubeconfigPath, kubeconfig, 0o600); err != nil {
		return nil, fmt.Errorf("write kube-controller-manager kubeconfig: %w", err)
	}
	apiserver := te.ControlPlane.GetAPIServer()
	// The CA that pods would trust for the API server, published by the
	// root-ca-cert-publisher in every namespace's kube-root-ca.crt ConfigMap.
	caPath := filepath.Join(dir, "apiserver-ca.crt")
	if err := os.WriteFile(caPath, apiserver.SecureServing.CA, 0o600); err != nil {
		return nil, fmt.Errorf("write API server CA: %w", err)
	}
	args := []string{
		"--kubeconfig=" + kubeconfigPath,
		// No serving endpoint: nothing scrapes it, and without one the
		// manager skips delegated authn/authz lookups against the API server.
		"--secure-port=0",
		"--leader-elect=false",
		// All controllers act as the manager's own (admin) identity; the
		// per-controller service accounts would need tokens nobody mounts.
		"--use-service-account-credentials=false",
		// envtest's service-account signing key, so the token controller
		// runs as in a real cluster instead of disabling itself.
		"--service-account-private-key-file=" + filepath.Join(apiserver.CertDir, "sa-signer.key"),
		"--root-ca-file=" + caPath,
		// Tests create objects in bursts; the default 20 QPS throttles them.
		"--kube-api-qps=200", "--kube-api-burst=400",
		"-v=2",
	}
	logFile, err := os.Create(filepath.Join(dir, "kube-controller-manager.log"))
	if err != nil {
		return nil, fmt.Errorf("create kube-controller-manager log: %w", err)
	}
	defer logFile.Close() // the child has its own descriptor
	cmd := exec.Command(binary, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Its own process group, like envtest's processes, so the reaper can
	// signal it and anything it might spawn in one go.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start kube-controller-manager: %w", err)
	}
	cm := &controllerManager{cmd: cmd, logPath: logFile.Name(), done: make(chan struct{})}
	go func() {
		cm.waitErr = cmd.Wait()
		close(cm.done)
	}()
	return cm, nil
}

// waitReady waits until the controllers run: the serviceaccount controller
// has created the default ServiceAccount, which it does right after its
// informers sync. (Garbage collection needs a few more seconds to discover
// every resource; tests poll for its effects anyway.)
func (cm *controllerManager) waitReady(ctx context.Context, c client.Client) error {
	err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		select {
		case <-cm.done:
			return false, fmt.Errorf("kube-controller-manager exited: %v", cm.waitErr)
		default:
		}
		var sa corev1.ServiceAccount
		err := c.Get(ctx, client.ObjectKey{Namespace: "default", Name: "default"}, &sa)
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return err == nil, err
	})
	if err != nil {
		return fmt.Errorf("kube-controller-manager not ready (log: %s): %w\n%s", cm.logPath, err, tail(cm.logPath, 20))
	}
	return nil
}

// stop sends SIGTERM, then SIGKILL if it has not exited within timeout.
func (cm *controllerManager) stop(timeout time.Duration) error {
	if cm == nil {
		return nil
	}
	select {
	case <-cm.done:
		return nil // already gone (waitReady reported why)
	default:
	}
	_ = cm.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-cm.done:
	case <-time.After(timeout):
		_ = syscall.Kill(-cm.cmd.Process.Pid, syscall.SIGKILL)
		<-cm.done
	}
	// Exiting on SIGTERM is the expected way out, not an error.
	var exitErr *exec.ExitError
	if cm.waitErr != nil && !errors.As(cm.waitErr, &exitErr) {
		return fmt.Errorf("kube-controller-manager: %w", cm.waitErr)
	}
	return nil
}

// tail returns the last n lines of the file at path, for failure messages.
func tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := 0
	for i := len(data) - 1; i >= 0; i-- {
		if data[i] == '\n' {
			lines++
			if lines > n {
				return string(data[i+1:])
			}
		}
	}
	return string(data)
}
