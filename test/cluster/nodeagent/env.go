package nodeagent

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// imagePullError is a container whose image has no executable.
type imagePullError struct{ image string }

func (e *imagePullError) Error() string {
	return fmt.Sprintf("failed to pull image %q: not in the node agent's image map (Config.Images)", e.image)
}

// configError is a container whose environment cannot be built
// (CreateContainerConfigError), e.g. a missing ConfigMap.
type configError struct{ err error }

func (e *configError) Error() string { return e.err.Error() }

// envList is an environment in definition order where a later definition
// of a name replaces the earlier one, as in a container.
type envList struct {
	names []string
	vals  map[string]string
}

func (e *envList) set(name, val string) {
	if e.vals == nil {
		e.vals = map[string]string{}
	}
	if _, ok := e.vals[name]; !ok {
		e.names = append(e.names, name)
	}
	e.vals[name] = val
}

func (e *envList) lookup(name string) (string, bool) { v, ok := e.vals[name]; return v, ok }

func (e *envList) environ() []string {
	out := make([]string, 0, len(e.names))
	for _, n := range e.names {
		out = append(out, n+"="+e.vals[n])
	}
	return out
}

// buildLaunch resolves c's executable, environment and arguments for pod.
//
// Executable: with no command, the image's executable. With a command, its
// first word is the image's executable when it names it (full path or base
// name, e.g. "flint" for an image mapped to /tmp/x/flint); otherwise it is
// looked up on the host's PATH, as if every image held the host's files
// (so "sh" works). Environment: PATH from the host, HOSTNAME (pod name),
// HOST (pod IP), the agent's marker, Config.Env, then the pod's envFrom and
// env with $(VAR) expansion against what is defined before. Command and
// args are expanded against the whole environment, then pod-local
// addresses are rewritten (rewrite.go).
func (w *podWorker) buildLaunch(ctx context.Context, c *corev1.Container) (launch, error) {
	image, ok := w.a.image(c.Image)
	if !ok {
		return launch{}, &imagePullError{image: c.Image}
	}
	pod := w.currentPod()
	env := &envList{}
	env.set("PATH", os.Getenv("PATH"))
	env.set("HOSTNAME", pod.Name)
	env.set("HOST", w.ip)
	env.set(markerEnv, w.a.marker)
	extra := make([]string, 0, len(w.a.cfg.Env))
	for k := range w.a.cfg.Env {
		extra = append(extra, k)
	}
	sort.Strings(extra)
	for _, k := range extra {
		env.set(k, w.a.cfg.Env[k])
	}
	if err := w.addPodEnv(ctx, pod, c, env); err != nil {
		return launch{}, &configError{err: err}
	}

	words := append(append([]string{}, c.Command...), c.Args...)
	for i := range words {
		words[i] = expand(words[i], env.lookup)
		if i > 0 || len(c.Command) == 0 {
			words[i] = rewriteAddrs(words[i], w.ip)
		}
	}
	path := image
	if len(c.Command) > 0 {
		var err error
		if path, err = resolveCommand(words[0], image); err != nil {
			return launch{}, err
		}
	} else {
		words = append([]string{image}, words...)
	}
	dir := c.WorkingDir
	if dir == "" || !filepath.IsAbs(dir) {
		dir = filepath.Dir(image)
	}
	return launch{path: path, args: words, env: env.environ(), dir: dir}, nil
}

func resolveCommand(cmd0, image string) (string, error) {
	if cmd0 == image || filepath.Base(cmd0) == filepath.Base(image) {
		return image, nil
	}
	path, err := exec.LookPath(cmd0)
	if err != nil {
		return "", fmt.Errorf("exec: %q: executable file not found in the image or on the host's PATH", cmd0)
	}
	return path, nil
}

// addPodEnv adds c's envFrom and env, pod-local addresses rewritten.
func (w *podWorker) addPodEnv(ctx context.Context, pod *corev1.Pod, c *corev1.Container, env *envList) error {
	for _, from := range c.EnvFrom {
		data, err := w.envSource(ctx, pod.Namespace, from)
		if err != nil {
			return err
		}
		keys := make([]string, 0, len(data))
		for k := range data {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			env.set(from.Prefix+k, rewriteAddrs(data[k], w.ip))
		}
	}
	for _, e := range c.Env {
		val := expand(e.Value, env.lookup)
		if e.ValueFrom != nil {
			v, ok, err := w.envValueFrom(ctx, pod, e.ValueFrom)
			if err != nil {
				return fmt.Errorf("env %s: %w", e.Name, err)
			}
			if !ok {
				continue // optional and missing
			}
			val = v
		}
		env.set(e.Name, rewriteAddrs(val, w.ip))
	}
	return nil
}

func (w *podWorker) envSource(ctx context.Context, ns string, from corev1.EnvFromSource) (map[string]string, error) {
	switch {
	case from.ConfigMapRef != nil:
		cm, err := w.a.client.CoreV1().ConfigMaps(ns).Get(ctx, from.ConfigMapRef.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) && isTrue(from.ConfigMapRef.Optional) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("envFrom configmap %q: %w", from.ConfigMapRef.Name, err)
		}
		return cm.Data, nil
	case from.SecretRef != nil:
		s, err := w.a.client.CoreV1().Secrets(ns).Get(ctx, from.SecretRef.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) && isTrue(from.SecretRef.Optional) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("envFrom secret %q: %w", from.SecretRef.Name, err)
		}
		data := map[string]string{}
		for k, v := range s.Data {
			data[k] = string(v)
		}
		return data, nil
	}
	return nil, nil
}

// envValueFrom resolves a valueFrom; ok is false for an optional source
// that does not exist.
func (w *podWorker) envValueFrom(ctx context.Context, pod *corev1.Pod, from *corev1.EnvVarSource) (val string, ok bool, err error) {
	switch {
	case from.FieldRef != nil:
		v, err := w.fieldValue(pod, from.FieldRef.FieldPath)
		return v, err == nil, err
	case from.ConfigMapKeyRef != nil:
		ref := from.ConfigMapKeyRef
		cm, err := w.a.client.CoreV1().ConfigMaps(pod.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return "", false, fmt.Errorf("configmap %q: %w", ref.Name, err)
		}
		if err == nil {
			if v, found := cm.Data[ref.Key]; found {
				return v, true, nil
			}
		}
		if isTrue(ref.Optional) {
			return "", false, nil
		}
		return "", false, fmt.Errorf("key %q of configmap %q not found", ref.Key, ref.Name)
	case from.SecretKeyRef != nil:
		ref := from.SecretKeyRef
		s, err := w.a.client.CoreV1().Secrets(pod.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return "", false, fmt.Errorf("secret %q: %w", ref.Name, err)
		}
		if err == nil {
			if v, found := s.Data[ref.Key]; found {
				return string(v), true, nil
			}
		}
		if isTrue(ref.Optional) {
			return "", false, nil
		}
		return "", false, fmt.Errorf("key %q of secret %q not found", ref.Key, ref.Name)
	}
	return "", false, fmt.Errorf("unsupported valueFrom (resourceFieldRef and fileKeyRef are not emulated)")
}

// fieldValue is the downward API for env.
func (w *podWorker) fieldValue(pod *corev1.Pod, path string) (string, error) {
	if key, ok := subscript(path, "metadata.labels"); ok {
		return pod.Labels[key], nil
	}
	if key, ok := subscript(path, "metadata.annotations"); ok {
		return pod.Annotations[key], nil
	}
	switch path {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "spec.nodeName":
		return w.a.cfg.NodeName, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "status.podIP", "status.podIPs":
		return w.ip, nil
	case "status.hostIP", "status.hostIPs":
		return w.a.cfg.HostIP, nil
	}
	return "", fmt.Errorf("fieldRef %q is not supported", path)
}

// subscript parses `prefix['key']`.
func subscript(path, prefix string) (string, bool) {
	rest, ok := strings.CutPrefix(path, prefix+"['")
	if !ok || !strings.HasSuffix(rest, "']") {
		return "", false
	}
	return strings.TrimSuffix(rest, "']"), true
}

func isTrue(b *bool) bool { return b != nil && *b }
