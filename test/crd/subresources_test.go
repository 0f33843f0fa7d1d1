package crd

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flint-dev/flint/api/v1alpha1"
)

func TestCRDServedWithSubresourcesAndColumns(t *testing.T) {
	var crd apiextensionsv1.CustomResourceDefinition
	if err := env.Client.Get(t.Context(), client.ObjectKey{Name: "agents.flint.dev"}, &crd); err != nil {
		t.Fatalf("get CRD: %v", err)
	}
	if len(crd.Spec.Versions) != 1 {
		t.Fatalf("versions: %+v", crd.Spec.Versions)
	}
	v := crd.Spec.Versions[0]
	if v.Name != "v1alpha1" || !v.Served || !v.Storage {
		t.Errorf("version %s served=%v storage=%v", v.Name, v.Served, v.Storage)
	}
	if v.Subresources == nil || v.Subresources.Status == nil || v.Subresources.Scale == nil {
		t.Fatalf("subresources: %+v", v.Subresources)
	}
	sc := v.Subresources.Scale
	if sc.SpecReplicasPath != ".spec.scaling.replicas" || sc.StatusReplicasPath != ".status.replicas" ||
		ptr.Deref(sc.LabelSelectorPath, "") != ".status.selector" {
		t.Errorf("scale subresource: %+v", sc)
	}
	var cols []string
	for _, c := range v.AdditionalPrinterColumns {
		cols = append(cols, c.Name)
	}
	want := []string{"Ready", "Reason", "Replicas", "Min", "Max", "URL", "Age", "Protocol", "Last Invocation"}
	if !slices.Equal(cols, want) {
		t.Errorf("printer columns %q, want %q", cols, want)
	}
	if !slices.Equal(crd.Spec.Names.ShortNames, []string{"ag"}) {
		t.Errorf("short names %q, want ag (kubectl get ag)", crd.Spec.Names.ShortNames)
	}
	if !slices.Contains(crd.Spec.Names.Categories, "flint") {
		t.Errorf("categories %q lack flint (kubectl get flint)", crd.Spec.Names.Categories)
	}

	// What kubectl get shows: the server renders the columns as a Table.
	ns := env.Namespace(t)
	a := minimal(ns, "table")
	if err := env.Client.Create(t.Context(), a); err != nil {
		t.Fatal(err)
	}
	// As the manager writes it for an agent at zero: replicas is always
	// written, so the column shows 0, not <none>.
	a.Status = v1alpha1.AgentStatus{Replicas: 0, MaxReplicas: 10, URL: "https://agents.example.com/v1/agents/" + ns + "/table/",
		Conditions: []metav1.Condition{{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: "ScaledToZero",
			Message: "scaled to zero", LastTransitionTime: metav1.Now()}}}
	if err := env.Client.Status().Update(t.Context(), a); err != nil {
		t.Fatal(err)
	}
	table := getTable(t, "/apis/flint.dev/v1alpha1/namespaces/"+ns+"/agents")
	var got []string
	for _, c := range table.ColumnDefinitions {
		got = append(got, c.Name)
	}
	if want := append([]string{"Name"}, want...); !slices.Equal(got, want) {
		t.Errorf("table columns %q, want %q", got, want)
	}
	if len(table.Rows) != 1 {
		t.Fatalf("%d table rows, want 1", len(table.Rows))
	}
	cells := fmt.Sprint(table.Rows[0].Cells[:7]) + " " + fmt.Sprint(table.Rows[0].Cells[8])
	if want := "[table True ScaledToZero 0 0 10 https://agents.example.com/v1/agents/" + ns + "/table/] http"; cells != want {
		t.Errorf("table row %s, want %s", cells, want)
	}
}

func getTable(t *testing.T, path string) *metav1.Table {
	t.Helper()
	hc, err := rest.HTTPClientFor(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	defer hc.CloseIdleConnections()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, strings.TrimSuffix(env.Config.Host, "/")+path, nil)
	req.Header.Set("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s: %s", path, resp.Status, body)
	}
	var table metav1.Table
	if err := json.Unmarshal(body, &table); err != nil {
		t.Fatalf("decode table: %v", err)
	}
	return &table
}

func TestStatusSubresource(t *testing.T) {
	ctx := t.Context()
	ns := env.Namespace(t)
	a := minimal(ns, "status")
	if err := env.Client.Create(ctx, a); err != nil {
		t.Fatal(err)
	}
	gen := a.Generation
	now := metav1.NewTime(time.Now().Truncate(time.Second))
	a.Status = v1alpha1.AgentStatus{
		Replicas: 2, ReadyReplicas: 1, DesiredReplicas: 3, Selector: "flint.dev/agent=status",
		LastInvocationAt: &now, URL: "http://gw/v1/agents/" + ns + "/status/", ObservedGeneration: gen,
		Conditions: []metav1.Condition{{
			Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: "Ready",
			Message: "1 of 2 replicas ready", LastTransitionTime: now,
		}},
	}
	if err := env.Client.Status().Update(ctx, a); err != nil {
		t.Fatalf("status update: %v", err)
	}
	got := &v1alpha1.Agent{}
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(a), got); err != nil {
		t.Fatal(err)
	}
	if got.Status.ReadyReplicas != 1 || got.Status.Selector != "flint.dev/agent=status" || len(got.Status.Conditions) != 1 {
		t.Errorf("status not stored: %+v", got.Status)
	}
	if got.Generation != gen {
		t.Errorf("status update bumped generation %d -> %d", gen, got.Generation)
	}

	// The main resource ignores status, and a spec change bumps generation.
	got.Status.ReadyReplicas = 99
	got.Spec.Concurrency = 3
	if err := env.Client.Update(ctx, got); err != nil {
		t.Fatal(err)
	}
	if got.Status.ReadyReplicas != 1 {
		t.Errorf("update through the main resource changed status: %+v", got.Status)
	}
	if got.Generation != gen+1 {
		t.Errorf("spec change: generation %d, want %d", got.Generation, gen+1)
	}
}

// TestScaleSubresource is the interface the autoscaler and `kubectl scale`
// use: GET and PUT agents/{name}/scale.
func TestScaleSubresource(t *testing.T) {
	ctx := t.Context()
	ns := env.Namespace(t)
	a := minimal(ns, "scaled")
	if err := env.Client.Create(ctx, a); err != nil {
		t.Fatal(err)
	}
	a.Status.Replicas, a.Status.Selector = 1, "flint.dev/agent=scaled"
	if err := env.Client.Status().Update(ctx, a); err != nil {
		t.Fatal(err)
	}

	scale := &autoscalingv1.Scale{}
	if err := env.Client.SubResource("scale").Get(ctx, a, scale); err != nil {
		t.Fatalf("get scale: %v", err)
	}
	if scale.Spec.Replicas != 0 || scale.Status.Replicas != 1 || scale.Status.Selector != "flint.dev/agent=scaled" {
		t.Errorf("scale before: spec %+v status %+v", scale.Spec, scale.Status)
	}

	scale.Spec.Replicas = 4
	if err := env.Client.SubResource("scale").Update(ctx, a, client.WithSubResourceBody(scale)); err != nil {
		t.Fatalf("put scale: %v", err)
	}
	got := &v1alpha1.Agent{}
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(a), got); err != nil {
		t.Fatal(err)
	}
	if r := got.Spec.Scaling.Replicas; r == nil || *r != 4 {
		t.Errorf("spec.scaling.replicas = %v after scaling to 4", r)
	}
	// Scaling must not reset the other scaling fields the server defaulted.
	if got.Spec.Scaling.StableWindow == nil || got.Spec.Scaling.MinReplicas == nil {
		t.Errorf("scaling fields lost: %+v", got.Spec.Scaling)
	}
}
