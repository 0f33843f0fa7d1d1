package realnode_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/yaml"

	"github.com/go-logr/logr"
	"helm.sh/helm/v3/pkg/release"

	"github.com/flint-dev/flint/api/v1alpha1"
	"github.com/flint-dev/flint/internal/images"
	"github.com/flint-dev/flint/internal/testenv"
)

// flintNS is where the tests install the chart, as docs/install.md does.
const flintNS = "flint-system"

// flintInstall is Flint installed from the chart once per test process,
// shared by the tests that run agents on it.
type flintInstall struct {
	client  client.Client
	gateway *corev1.Service // the gateway's public Service
	apiKey  string          // from the Secret the manager created
}

var (
	installOnce sync.Once
	installed   *flintInstall
	installErr  error
)

// installFlint installs the chart as a user would (helm install with the
// built image, --wait) and waits for the manager's API key Secret.
func installFlint(t *testing.T) *flintInstall {
	t.Helper()
	needNode(t)
	installOnce.Do(func() {
		start := time.Now()
		installed, installErr = doInstall()
		if installErr == nil {
			t.Logf("flint installed from the chart, manager and gateway Ready, in %s", time.Since(start).Round(time.Millisecond))
		}
	})
	if installErr != nil {
		t.Fatal(installErr)
	}
	return installed
}

func doInstall() (*flintInstall, error) {
	ctx := context.Background()
	root, err := testenv.ModuleRoot()
	if err != nil {
		return nil, err
	}
	image, err := flintImageValues()
	if err != nil {
		return nil, err
	}
	// What `helm install flint deploy/helm/flint -n flint-system
	// --create-namespace --set image.repository=... --set image.tag=...
	// --wait` does; one manager (two would only wait on the lease); the
	// selector leaves out the Agents of a second release's test.
	values := map[string]any{
		"image":   image,
		"manager": map[string]any{"replicas": 1},
		"gateway": map[string]any{"replicas": 2},
		// Every Agent but those of TestSidecarTLSOnARealNode's own release.
		"agentSelector": "!" + releaseLabel,
	}
	rel, err := node.HelmInstall(ctx, filepath.Join(root, "deploy", "helm", "flint"), "flint", flintNS, values, 4*time.Minute)
	if err != nil {
		return nil, fmt.Errorf("%w\n%s", err, podsReport(flintNS))
	}
	if rel.Info.Status != release.StatusDeployed {
		return nil, fmt.Errorf("release status %s, want deployed", rel.Info.Status)
	}
	for _, name := range []string{"flint-manager", "flint-gateway"} {
		d, err := node.Kube.AppsV1().Deployments(flintNS).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		if d.Status.ReadyReplicas != *d.Spec.Replicas {
			return nil, fmt.Errorf("deployment %s: %d of %d Ready after helm --wait", name, d.Status.ReadyReplicas, *d.Spec.Replicas)
		}
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, err
	}
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	ctrllog.SetLogger(logr.Discard())
	c, err := client.New(node.REST, client.Options{Scheme: scheme})
	if err != nil {
		return nil, err
	}
	in := &flintInstall{client: c}
	if in.gateway, err = node.Kube.CoreV1().Services(flintNS).Get(ctx, "flint-gateway", metav1.GetOptions{}); err != nil {
		return nil, err
	}
	// The manager creates the API keys Secret at start; a user reads it the
	// same way (kubectl get secret flint-api-keys -o jsonpath=...).
	deadline := time.Now().Add(time.Minute)
	for {
		s, err := node.Kube.CoreV1().Secrets(flintNS).Get(ctx, "flint-api-keys", metav1.GetOptions{})
		if err == nil {
			in.apiKey = firstAPIKey(s)
			if in.apiKey != "" {
				return in, nil
			}
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("no API key in Secret %s/flint-api-keys after 1m: %v", flintNS, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// flintImageValues is the chart's image value for the flint image built here.
func flintImageValues() (map[string]any, error) {
	ref := node.ImageRef("flint")
	repo, tag, _ := strings.Cut(ref, ":"+node.Version())
	if tag != "" || repo == ref {
		return nil, fmt.Errorf("image %s is not tagged with version %s", ref, node.Version())
	}
	return map[string]any{"repository": repo, "tag": node.Version(), "pullPolicy": "IfNotPresent"}, nil
}

// firstAPIKey is the first key of an API keys Secret the manager created,
// as a user reads it (kubectl get secret RELEASE-api-keys -o jsonpath=...).
func firstAPIKey(s *corev1.Secret) string {
	return strings.TrimSpace(strings.SplitN(string(s.Data["keys"]), "\n", 2)[0])
}

// podsReport says what each pod of ns is doing, for failure messages.
func podsReport(ns string) string {
	list, err := node.Kube.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		return err.Error()
	}
	var b strings.Builder
	for _, p := range list.Items {
		fmt.Fprintf(&b, "pod %s: phase %s", p.Name, p.Status.Phase)
		for _, c := range p.Status.Conditions {
			fmt.Fprintf(&b, " %s=%s", c.Type, c.Status)
		}
		for _, cs := range append(p.Status.InitContainerStatuses, p.Status.ContainerStatuses...) {
			fmt.Fprintf(&b, " [%s ready=%v restarts=%d", cs.Name, cs.Ready, cs.RestartCount)
			if w := cs.State.Waiting; w != nil {
				fmt.Fprintf(&b, " waiting %s: %s", w.Reason, w.Message)
			}
			if tm := cs.LastTerminationState.Terminated; tm != nil {
				fmt.Fprintf(&b, " last exit %d %s", tm.ExitCode, tm.Reason)
			}
			b.WriteString("]")
		}
		b.WriteString("\n")
	}
	return b.String()
}

// echoAgent is the echo example as examples/echo/kubernetes.yaml has it,
// with the image built here, short scaling windows so tests see scaling
// within seconds, and mutate applied.
func echoAgent(ns, name string, mutate func(*v1alpha1.Agent)) *v1alpha1.Agent {
	a := &v1alpha1.Agent{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.AgentSpec{
			Protocol:    v1alpha1.ProtocolHTTP,
			Concurrency: 10,
			Container: v1alpha1.AgentContainer{
				Image:           node.ImageRef("echo"),
				ImagePullPolicy: corev1.PullIfNotPresent,
				Port:            8080,
				ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{
					HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(8080)}}},
			},
			Scaling: v1alpha1.Scaling{
				MinReplicas:      ptr.To[int32](0),
				MaxReplicas:      ptr.To[int32](3),
				ScaleToZeroAfter: &metav1.Duration{Duration: 2 * time.Second},
				StableWindow:     &metav1.Duration{Duration: 6 * time.Second},
			},
		},
	}
	if mutate != nil {
		mutate(a)
	}
	return a
}

func (in *flintInstall) create(t *testing.T, a *v1alpha1.Agent) {
	t.Helper()
	if err := in.client.Create(context.Background(), a); err != nil {
		t.Fatalf("create agent %s/%s: %v", a.Namespace, a.Name, err)
	}
}

// url is agent ns/name's URL at the gateway's Service (its ClusterIP,
// through kube-proxy).
func (in *flintInstall) url(ns, name, path string) string {
	return fmt.Sprintf("http://%s:%d/v1/agents/%s/%s%s", in.gateway.Spec.ClusterIP, in.gateway.Spec.Ports[0].Port, ns, name, path)
}

// get sends an authenticated GET through the gateway's Service.
func (in *flintInstall) get(ctx context.Context, c *http.Client, url string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+in.apiKey)
	return c.Do(req)
}

// waitAtZero waits until ns/name's Deployment is at zero with no pod left.
func waitAtZero(t *testing.T, ns, name string, timeout time.Duration) {
	t.Helper()
	testenv.Await(t, timeout, ns+"/"+name+" at zero with no pods", func() (bool, string) {
		d, err := node.Kube.AppsV1().Deployments(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		list, err := node.Kube.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: "flint.dev/agent=" + name})
		if err != nil {
			return false, err.Error()
		}
		return ptr.Deref(d.Spec.Replicas, -1) == 0 && len(list.Items) == 0,
			fmt.Sprintf("replicas %d, %d pods", ptr.Deref(d.Spec.Replicas, -1), len(list.Items))
	})
}

// exampleAgent is deploy/examples/<name>.yaml as docs/install.md applies it
// (VERSION replaced by the images' tag) in namespace ns.
func exampleAgent(t *testing.T, name, ns string) *v1alpha1.Agent {
	t.Helper()
	root, err := testenv.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "deploy", "examples", name+".yaml"))
	if err != nil {
		t.Fatal(err)
	}
	a := &v1alpha1.Agent{}
	if err := yaml.UnmarshalStrict(bytes.ReplaceAll(b, []byte(":VERSION"), []byte(":"+node.Version())), a); err != nil {
		t.Fatalf("deploy/examples/%s.yaml: %v", name, err)
	}
	if want := images.DefaultRegistry + "/examples/" + name + ":" + node.Version(); a.Spec.Container.Image != want {
		t.Fatalf("deploy/examples/%s.yaml: image %s, but hack/images.sh builds %s", name, a.Spec.Container.Image, want)
	}
	a.Namespace = ns
	return a
}

// Every example's Kubernetes manifest is an Agent the API server accepts
// (schema and CEL rules), with the image hack/images.sh builds.
func TestExampleManifestsApply(t *testing.T) {
	in := installFlint(t)
	ns := newNamespace(t)
	for _, name := range []string{"echo", "mcp-go", "mcp-stdio", "a2a"} {
		a := exampleAgent(t, name, ns)
		if err := in.client.Create(context.Background(), a, client.DryRunAll); err != nil {
			t.Errorf("deploy/examples/%s.yaml: %v", name, err)
		}
	}
}

// The chart installs with the Helm Go library as `helm install` would, with
// the image built by internal/images; the echo Agent is invoked through the
// gateway's Service (ClusterIP, real kube-proxy) with the API key from the
// Secret the manager created; without the key the gateway answers 401.
func TestChartInstallServesEcho(t *testing.T) {
	in := installFlint(t)
	ns := newNamespace(t)
	in.create(t, exampleAgent(t, "echo", ns))
	c := node.HTTPClient()
	c.Timeout = 2 * time.Minute
	ctx := context.Background()
	in.awaitKnown(t, ns, "echo")

	start := time.Now()
	res, err := in.get(ctx, c, in.url(ns, "echo", "/hello?x=1"))
	if err != nil {
		t.Fatalf("invoke echo: %v\n%s", err, podsReport(ns)+podsReport(flintNS))
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.Contains(string(body), "/hello") {
		t.Fatalf("invoke echo: %d %s\n%s", res.StatusCode, body, podsReport(ns)+podsReport(flintNS))
	}
	t.Logf("first request (from zero): %d in %s, cold-start wait %s", res.StatusCode, time.Since(start).Round(time.Millisecond), res.Header.Get("X-Flint-Cold-Start-Wait"))

	req, _ := http.NewRequest(http.MethodGet, in.url(ns, "echo", "/hello"), nil)
	res, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized {
		t.Errorf("without the API key: %d, want 401", res.StatusCode)
	}
}

// awaitKnown waits until every gateway knows agent ns/name: a request sent
// the instant an Agent is created may reach a gateway whose informer has
// not seen it yet (404 AgentNotFound), as `kubectl wait` would cover.
func (in *flintInstall) awaitKnown(t *testing.T, ns, name string) {
	t.Helper()
	c := node.HTTPClient()
	c.Timeout = 5 * time.Second
	gws, err := node.Kube.CoreV1().Pods(flintNS).List(context.Background(), metav1.ListOptions{LabelSelector: "app.kubernetes.io/component=gateway"})
	if err != nil || len(gws.Items) == 0 {
		t.Fatalf("list gateway pods: %v (%d)", err, len(gws.Items))
	}
	for _, gw := range gws.Items {
		if gw.DeletionTimestamp != nil || gw.Status.PodIP == "" {
			continue
		}
		testenv.Await(t, 30*time.Second, "gateway "+gw.Name+" knows "+ns+"/"+name, func() (bool, string) {
			// The admin port's description of the agent (no wake-up).
			req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("http://%s:9091/api/v1/agents/%s/%s", gw.Status.PodIP, ns, name), nil)
			req.Header.Set("Authorization", "Bearer "+in.apiKey)
			res, err := c.Do(req)
			if err != nil {
				return false, err.Error()
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			return res.StatusCode == http.StatusOK, fmt.Sprintf("%d %.200s", res.StatusCode, b)
		})
	}
}
