package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flint-dev/flint/api/v1alpha1"
	"github.com/flint-dev/flint/internal/testenv"
	"github.com/flint-dev/flint/test/internal/load"
)

// waitTimeout is generous: a loaded 2-core machine runs the control plane,
// the manager, two gateways and the pods.
const waitTimeout = 90 * time.Second

// namespace creates a namespace for t; on failure, what the pods and the
// Flint processes printed about it is logged.
func namespace(t *testing.T) string {
	t.Helper()
	ns := env.Namespace(t)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("output about %s:\n%s", ns, output.about(ns))
		}
	})
	return ns
}

// echoAgent is the echo example as a cluster Agent: scale to zero, a
// concurrency cap, short windows so tests see scaling within seconds.
func echoAgent(ns, name string, mutate func(*v1alpha1.Agent)) *v1alpha1.Agent {
	a := &v1alpha1.Agent{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.AgentSpec{
			Protocol:    v1alpha1.ProtocolHTTP,
			Concurrency: 10,
			Container: v1alpha1.AgentContainer{
				Image: echoImage,
				Port:  8080,
				ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{
					HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(8080)}}},
			},
			Scaling: v1alpha1.Scaling{
				MinReplicas:      ptr.To[int32](0),
				MaxReplicas:      ptr.To[int32](5),
				ScaleToZeroAfter: &metav1.Duration{Duration: 10 * time.Second},
				StableWindow:     &metav1.Duration{Duration: 6 * time.Second},
			},
		},
	}
	if mutate != nil {
		mutate(a)
	}
	return a
}

func create(t *testing.T, a *v1alpha1.Agent) *v1alpha1.Agent {
	t.Helper()
	if err := env.Client.Create(context.Background(), a); err != nil {
		t.Fatalf("create agent %s/%s: %v", a.Namespace, a.Name, err)
	}
	return a
}

func getAgent(t *testing.T, ns, name string) *v1alpha1.Agent {
	t.Helper()
	a := &v1alpha1.Agent{}
	if err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, a); err != nil {
		t.Fatalf("get agent %s/%s: %v", ns, name, err)
	}
	return a
}

// pods lists the agent's pods: all of them, and the ready ones.
func pods(t *testing.T, ns, agent string) (all, ready []corev1.Pod) {
	t.Helper()
	return testenv.Pods(t, kube, ns, "flint.dev/agent="+agent)
}

// waitScaledToZero waits until the agent has a Deployment at zero and no pods.
func waitScaledToZero(t *testing.T, ns, name string) {
	t.Helper()
	testenv.Await(t, waitTimeout, ns+"/"+name+" at zero with no pods", func() (bool, string) {
		d, err := kube.AppsV1().Deployments(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		all, _ := pods(t, ns, name)
		return d.Spec.Replicas != nil && *d.Spec.Replicas == 0 && len(all) == 0,
			fmt.Sprintf("deployment replicas %v, pods %s", ptr.Deref(d.Spec.Replicas, -1), testenv.DescribePods(all))
	})
}

// invokeURL is the agent's URL at gw with path.
func invokeURL(gw *gatewayProc, ns, name, path string) string {
	return gw.url + "/v1/agents/" + ns + "/" + name + path
}

// timedGet sends one GET and reports the time to the response's first byte.
func timedGet(t *testing.T, url string) (status int, body string, firstByte time.Duration, res *http.Response) {
	t.Helper()
	var got time.Time
	trace := &httptrace.ClientTrace{GotFirstResponseByte: func() { got = time.Now() }}
	req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "GET", url, nil)
	begin := time.Now()
	res, err := (&http.Client{Timeout: 2 * time.Minute}).Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b), got.Sub(begin), res
}

// startLoad sends rate requests per second to url until Stop.
func startLoad(url string, rate int) *load.Load {
	atk := vegeta.NewAttacker(vegeta.Timeout(60*time.Second), vegeta.MaxWorkers(1000), vegeta.KeepAlive(true))
	return load.Start(atk, vegeta.NewStaticTargeter(vegeta.Target{Method: "GET", URL: url}), rate)
}

var _ client.Object = (*v1alpha1.Agent)(nil)

// waitKnown waits until gw's informers have delivered the agent: until
// then the gateway rightly answers 404 for it.
func waitKnown(t *testing.T, gw *gatewayProc, ns, name string) {
	t.Helper()
	testenv.Await(t, waitTimeout, gw.name+" to know "+ns+"/"+name, func() (bool, string) {
		res, err := http.Get(gw.url + "/api/v1/agents")
		if err != nil {
			return false, err.Error()
		}
		defer res.Body.Close()
		var list []struct{ Namespace, Name string }
		if err := json.NewDecoder(res.Body).Decode(&list); err != nil {
			return false, err.Error()
		}
		for _, a := range list {
			if a.Namespace == ns && a.Name == name {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%d agents listed", len(list))
	})
}
