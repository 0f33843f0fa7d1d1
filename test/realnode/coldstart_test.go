package realnode_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
)

// coldStarts is how many cold starts TestColdStartBreakdown measures.
const coldStarts = 10

// The milestones of a cold start, in the order they happen; each is timed
// when the test's pod watch delivers the change (millisecond resolution;
// the status timestamps the kubelet writes have only 1 s). The gateway
// routes to the pod once its sidecar answers, before the kubelet's
// readiness probe has run and reported the pod Ready, so "pod Ready" is
// reported apart (afterMilestones) and "first byte" follows "agent started".
var (
	milestones      = []string{"pod created", "scheduled", "sandbox ready", "sidecar started", "agent started", "first byte"}
	afterMilestones = []string{"pod Ready"}
)

// coldStart is one measured cold start: each milestone's time after the
// request was sent, and the gateway's own hold time.
type coldStart struct {
	at   map[string]time.Duration
	hold time.Duration // X-Flint-Cold-Start-Wait
}

// An agent at zero answers its first request through the gateway's Service
// after a real pod starts; measured coldStarts times, request → first byte,
// broken down by the pod's milestones as the API server reports them.
func TestColdStartBreakdown(t *testing.T) {
	in := installFlint(t)
	ns := newNamespace(t)
	in.create(t, echoAgent(ns, "cold", nil))
	in.awaitKnown(t, ns, "cold")
	c := node.HTTPClient()
	c.Timeout = 2 * time.Minute

	var runs []coldStart
	var startWarnings, drainWarnings int
	var warnings []string
	for i := range coldStarts {
		waitAtZero(t, ns, "cold", 3*time.Minute)
		n, _ := unhealthyEvents(t, ns)
		drainWarnings += n - startWarnings - drainWarnings
		cs, err := measureColdStart(in, c, ns, "cold")
		if err != nil {
			t.Fatalf("cold start %d: %v\n%s", i+1, err, podsReport(ns))
		}
		runs = append(runs, cs)
		// The kubelet posts its events asynchronously; those of probes that
		// failed before the pod turned Ready are out well within this.
		time.Sleep(time.Second)
		m, msgs := unhealthyEvents(t, ns)
		startWarnings += m - n
		warnings = msgs
		t.Logf("cold start %2d: %s, kubelet Unhealthy warnings %d", i+1, cs, m-n)
	}
	t.Logf("cold start on the real node, %d runs (times from the request; watch-observed):\n%s", len(runs), breakdownTable(runs))
	waitAtZero(t, ns, "cold", 3*time.Minute)
	n, msgs := unhealthyEvents(t, ns)
	drainWarnings += n - startWarnings - drainWarnings
	if len(msgs) > 0 {
		warnings = msgs
	}
	t.Logf("kubelet Unhealthy (probe) warnings: %d during %d cold starts, %d during the scale-downs between them:\n  %s",
		startWarnings, len(runs), drainWarnings, strings.Join(warnings, "\n  "))
	// A normal cold start fails no probe (controller.readinessThroughSidecar:
	// 18 over 10 before, from probes run before the sidecar listened or
	// while the agent started). A draining replica fails readiness on
	// purpose, about once a second of its drain: reported, not asserted.
	if startWarnings != 0 {
		t.Errorf("%d kubelet Unhealthy warnings during %d normal cold starts, want 0", startWarnings, len(runs))
	}
}

// unhealthyEvents sums the kubelet's Unhealthy (probe failed) warnings in
// ns, counting repeats the kubelet folded into one event, and describes them.
func unhealthyEvents(t *testing.T, ns string) (int, []string) {
	t.Helper()
	evs, err := node.Kube.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{FieldSelector: "reason=Unhealthy"})
	if err != nil {
		t.Fatalf("list events: %v", err)
	}
	n := 0
	var msgs []string
	for _, e := range evs.Items {
		c := int(max(e.Count, 1))
		n += c
		msgs = append(msgs, fmt.Sprintf("%dx %s %s: %s", c, e.InvolvedObject.Name, e.InvolvedObject.FieldPath, e.Message))
	}
	return n, msgs
}

// measureColdStart sends one request to an agent at zero and times its
// pod's milestones from a watch started before the request.
func measureColdStart(in *flintInstall, c *http.Client, ns, name string) (coldStart, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	w, err := node.Kube.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{LabelSelector: "flint.dev/agent=" + name})
	if err != nil {
		return coldStart{}, err
	}
	defer w.Stop()
	cs := coldStart{at: map[string]time.Duration{}}
	var mu sync.Mutex
	start := time.Now()
	mark := func(m string) {
		mu.Lock()
		defer mu.Unlock()
		if _, ok := cs.at[m]; !ok {
			cs.at[m] = time.Since(start)
		}
	}
	go func() {
		for ev := range w.ResultChan() {
			p, ok := ev.Object.(*corev1.Pod)
			if !ok || ev.Type == watch.Deleted {
				continue
			}
			markPod(p, mark)
		}
	}()
	var firstByte time.Duration
	trace := &httptrace.ClientTrace{GotFirstResponseByte: func() { firstByte = time.Since(start) }}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), http.MethodGet, in.url(ns, name, "/cold"), nil)
	if err != nil {
		return cs, err
	}
	req.Header.Set("Authorization", "Bearer "+in.apiKey)
	res, err := c.Do(req)
	if err != nil {
		return cs, err
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return cs, fmt.Errorf("%d %s", res.StatusCode, body)
	}
	if cs.hold, err = time.ParseDuration(res.Header.Get("X-Flint-Cold-Start-Wait")); err != nil {
		return cs, fmt.Errorf("X-Flint-Cold-Start-Wait %q: %v (was the agent at zero?)", res.Header.Get("X-Flint-Cold-Start-Wait"), err)
	}
	// The watch may deliver the last status a moment after the answer.
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(cs.at)
		mu.Unlock()
		if n == len(milestones)-1+len(afterMilestones) || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	cs.at["first byte"] = firstByte
	for _, m := range append(milestones, afterMilestones...) {
		if _, ok := cs.at[m]; !ok {
			return cs, fmt.Errorf("the watch never saw %q (%v)", m, cs.at)
		}
	}
	return cs, nil
}

// markPod marks the milestones pod p has reached.
func markPod(p *corev1.Pod, mark func(string)) {
	mark("pod created")
	if p.Spec.NodeName != "" {
		mark("scheduled")
	}
	for _, c := range p.Status.Conditions {
		if c.Status != corev1.ConditionTrue {
			continue
		}
		switch c.Type {
		case corev1.PodReadyToStartContainers:
			mark("sandbox ready")
		case corev1.PodReady:
			mark("pod Ready")
		}
	}
	for _, s := range append(p.Status.InitContainerStatuses, p.Status.ContainerStatuses...) {
		if s.State.Running == nil {
			continue
		}
		switch s.Name {
		case "flint-proxy":
			mark("sidecar started")
		case "agent":
			mark("agent started")
		}
	}
}

func (cs coldStart) String() string {
	var b strings.Builder
	for _, m := range append(milestones, afterMilestones...) {
		fmt.Fprintf(&b, "%s %s, ", m, cs.at[m].Round(time.Millisecond))
	}
	fmt.Fprintf(&b, "gateway hold %s", cs.hold.Round(time.Millisecond))
	return b.String()
}

// breakdownTable is each step's p50 and p90 over runs (the time from the
// previous milestone) and the cumulative time from the request.
func breakdownTable(runs []coldStart) string {
	var b strings.Builder
	fmt.Fprintf(&b, "  %-40s %9s %9s %12s %12s\n", "step", "p50", "p90", "at p50", "at p90")
	prev := ""
	for _, m := range milestones {
		var step, at []time.Duration
		for _, r := range runs {
			d := r.at[m]
			if prev != "" {
				d -= r.at[prev]
			}
			step = append(step, d)
			at = append(at, r.at[m])
		}
		label := "request → " + m
		if prev != "" {
			label = prev + " → " + m
		}
		if m == "first byte" {
			label += " (routed)"
		}
		fmt.Fprintf(&b, "  %-40s %9s %9s %12s %12s\n", label, ms(percentile(step, 50)), ms(percentile(step, 90)), ms(percentile(at, 50)), ms(percentile(at, 90)))
		prev = m
	}
	for _, m := range afterMilestones {
		var at []time.Duration
		for _, r := range runs {
			at = append(at, r.at[m])
		}
		fmt.Fprintf(&b, "  %-40s %9s %9s %12s %12s\n", "request → "+m+" (API)", "", "", ms(percentile(at, 50)), ms(percentile(at, 90)))
	}
	var hold []time.Duration
	for _, r := range runs {
		hold = append(hold, r.hold)
	}
	fmt.Fprintf(&b, "  %-40s %9s %9s\n", "gateway hold (X-Flint-Cold-Start-Wait)", ms(percentile(hold, 50)), ms(percentile(hold, 90)))
	return b.String()
}

// percentile is the nearest-rank p-th percentile of ds.
func percentile(ds []time.Duration, p int) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (p*len(s)+99)/100 - 1
	return s[max(i, 0)]
}

func ms(d time.Duration) string { return d.Round(time.Millisecond).String() }
