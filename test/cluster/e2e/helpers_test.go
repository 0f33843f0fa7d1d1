package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"sort"
	"strings"
	"sync"
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
	list, err := kube.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: "flint.dev/agent=" + agent})
	if err != nil {
		t.Fatalf("list pods: %v", err)
	}
	for _, p := range list.Items {
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue && p.DeletionTimestamp == nil {
				ready = append(ready, p)
			}
		}
	}
	return list.Items, ready
}

func describePods(ps []corev1.Pod) string {
	var b strings.Builder
	for _, p := range ps {
		fmt.Fprintf(&b, "%s(%s ip=%s deleting=%v) ", p.Name, p.Status.Phase, p.Status.PodIP, p.DeletionTimestamp != nil)
	}
	return b.String()
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
			fmt.Sprintf("deployment replicas %v, pods %s", ptr.Deref(d.Spec.Replicas, -1), describePods(all))
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

// load is steady open-loop traffic from vegeta, counted by outcome.
type load struct {
	stopCh chan struct{}
	done   chan struct{}

	mu       sync.Mutex
	codes    map[int]int
	errors   map[string]int
	noRetry  int // 503s without Retry-After
	total    int
	failures []string // a few examples
}

// startLoad sends rate requests per second to url until stop.
func startLoad(url string, rate int) *load {
	l := &load{stopCh: make(chan struct{}), done: make(chan struct{}), codes: map[int]int{}, errors: map[string]int{}}
	atk := vegeta.NewAttacker(vegeta.Timeout(60*time.Second), vegeta.MaxWorkers(1000), vegeta.KeepAlive(true))
	tr := vegeta.NewStaticTargeter(vegeta.Target{Method: "GET", URL: url})
	results := atk.Attack(tr, vegeta.Rate{Freq: rate, Per: time.Second}, 0, "load")
	go func() {
		<-l.stopCh
		atk.Stop()
	}()
	go func() {
		defer close(l.done)
		for r := range results {
			l.record(r)
		}
	}()
	return l
}

func (l *load) record(r *vegeta.Result) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total++
	if r.Error != "" && r.Code == 0 {
		l.errors[r.Error]++
		if len(l.failures) < 5 {
			l.failures = append(l.failures, r.Error)
		}
		return
	}
	l.codes[int(r.Code)]++
	if r.Code == http.StatusServiceUnavailable && r.Headers.Get("Retry-After") == "" {
		l.noRetry++
	}
	if r.Code != http.StatusOK && r.Code != http.StatusServiceUnavailable && len(l.failures) < 5 {
		l.failures = append(l.failures, fmt.Sprintf("%d %s", r.Code, strings.TrimSpace(string(r.Body))))
	}
}

// stop ends the load and waits for every request in flight.
func (l *load) stop() {
	close(l.stopCh)
	<-l.done
}

func (l *load) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var codes []string
	for c, n := range l.codes {
		codes = append(codes, fmt.Sprintf("%d×%d", n, c))
	}
	sort.Strings(codes)
	return fmt.Sprintf("%d requests: %s; transport errors %v; examples %q", l.total, strings.Join(codes, " "), l.errors, l.failures)
}

// failed counts requests that failed in a way no client should see: any
// transport error, any status but 200 and 503 + Retry-After (overload).
func (l *load) failed() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := l.noRetry
	for _, c := range l.errors {
		n += c
	}
	for code, c := range l.codes {
		if code != http.StatusOK && code != http.StatusServiceUnavailable {
			n += c
		}
	}
	return n
}

func (l *load) count(code int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.codes[code]
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
