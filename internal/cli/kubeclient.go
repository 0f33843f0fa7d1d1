package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flint-dev/flint/api/v1alpha1"
	"github.com/flint-dev/flint/internal/gateway"
	"github.com/flint-dev/flint/internal/platform"
	"github.com/flint-dev/flint/internal/platform/kube"
)

// kubeFlags select reading Agents from a cluster instead of a gateway.
type kubeFlags struct {
	Kube       bool
	Kubeconfig string
}

func (k *kubeFlags) RegisterFlags(fs *flag.FlagSet) {
	fs.BoolVar(&k.Kube, "kube", false, "read Agents from the Kubernetes cluster of the current kubeconfig context instead of a gateway")
	fs.StringVar(&k.Kubeconfig, "kubeconfig", "", "path of a kubeconfig; implies -kube (default $KUBECONFIG, then ~/.kube/config)")
}

// reader returns the cluster reader when asked for, else the gateway's.
func (k *kubeFlags) reader(cf *clientFlags, namespace string) (agentReader, error) {
	if !k.Kube && k.Kubeconfig == "" {
		return cf.client(), nil
	}
	return newKubeReader(k.Kubeconfig, namespace)
}

// kubeReader reads what the manager writes into Agents' status, the ready
// endpoints from EndpointSlices and the Agent's Events. Live load (in
// flight, held) is only known to gateways, so it is zero here; scale
// decisions are in the manager's log and its Prometheus series.
type kubeReader struct {
	c         client.Client
	namespace string // "" lists every namespace
}

var _ agentReader = (*kubeReader)(nil)

func newKubeReader(kubeconfig, namespace string) (*kubeReader, error) {
	cfg, err := kubeRESTConfig(kubeconfig) // manager.go
	if err != nil {
		return nil, err
	}
	scheme := runtime.NewScheme()
	if err := errors.Join(clientgoscheme.AddToScheme(scheme), v1alpha1.AddToScheme(scheme)); err != nil {
		return nil, fmt.Errorf("scheme: %w", err)
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("connect to the Kubernetes API server %s: %w", cfg.Host, err)
	}
	return &kubeReader{c: c, namespace: namespace}, nil
}

func (k *kubeReader) List(ctx context.Context) ([]gateway.AgentSummary, error) {
	var list v1alpha1.AgentList
	if err := k.c.List(ctx, &list, client.InNamespace(k.namespace)); err != nil {
		return nil, fmt.Errorf("list Agents: %w", err)
	}
	out := make([]gateway.AgentSummary, 0, len(list.Items))
	for i := range list.Items {
		out = append(out, summaryOf(&list.Items[i]))
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].Namespace+"/"+out[i].Name < out[j].Namespace+"/"+out[j].Name
	})
	return out, nil
}

func (k *kubeReader) Describe(ctx context.Context, key platform.AgentKey) (*gateway.AgentDetail, error) {
	var a v1alpha1.Agent
	if err := k.c.Get(ctx, client.ObjectKey{Namespace: key.Namespace, Name: key.Name}, &a); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, errAgentNotFound
		}
		return nil, fmt.Errorf("get Agent %s: %w", key, err)
	}
	a.Default()
	d := &gateway.AgentDetail{AgentSummary: summaryOf(&a), Spec: a.Spec, Endpoints: []gateway.EndpointDetail{}, Decisions: []gateway.DecisionDetail{}}
	eps, err := k.endpoints(ctx, key)
	if err != nil {
		return nil, err
	}
	d.Endpoints = eps
	if d.Events, err = k.events(ctx, &a); err != nil {
		return nil, err
	}
	return d, nil
}

// endpoints lists the agent's ready replicas as the gateways' platform
// reads them (platform/kube).
func (k *kubeReader) endpoints(ctx context.Context, key platform.AgentKey) ([]gateway.EndpointDetail, error) {
	eps, err := kube.ReadyEndpointsOnce(ctx, k.c, key)
	if err != nil {
		return nil, err
	}
	out := make([]gateway.EndpointDetail, 0, len(eps))
	for _, ep := range eps {
		out = append(out, gateway.EndpointDetail{Replica: ep.Replica, Addr: ep.Addr, AdminAddr: ep.AdminAddr})
	}
	return out, nil
}

// maxEvents keeps describe short; the newest are kept.
const maxEvents = 10

// events returns the Agent's recent Events (the manager's reconcile
// reports: failures, recoveries), oldest first.
func (k *kubeReader) events(ctx context.Context, a *v1alpha1.Agent) ([]gateway.EventDetail, error) {
	var list corev1.EventList
	if err := k.c.List(ctx, &list, client.InNamespace(a.Namespace),
		client.MatchingFields{"involvedObject.name": a.Name, "involvedObject.kind": "Agent"}); err != nil {
		return nil, fmt.Errorf("list Events of %s/%s: %w", a.Namespace, a.Name, err)
	}
	out := make([]gateway.EventDetail, 0, len(list.Items))
	for _, e := range list.Items {
		out = append(out, gateway.EventDetail{Time: eventTime(&e), Type: e.Type, Reason: e.Reason, Message: e.Message, Count: max(e.Count, 1)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	if len(out) > maxEvents {
		out = out[len(out)-maxEvents:]
	}
	return out, nil
}

func eventTime(e *corev1.Event) time.Time {
	for _, t := range []time.Time{e.EventTime.Time, e.LastTimestamp.Time, e.FirstTimestamp.Time, e.CreationTimestamp.Time} {
		if !t.IsZero() {
			return t
		}
	}
	return time.Time{}
}

// summaryOf is an Agent's line of `flint agents`, from its status.
func summaryOf(a *v1alpha1.Agent) gateway.AgentSummary {
	protocol := a.Spec.Protocol
	if protocol == "" {
		protocol = v1alpha1.ProtocolHTTP
	}
	desired := a.Status.DesiredReplicas
	s := gateway.AgentSummary{
		Namespace: a.Namespace, Name: a.Name, Protocol: string(protocol), URL: a.Status.URL,
		Replicas: a.Status.Replicas, ReadyReplicas: int(a.Status.ReadyReplicas), DesiredReplicas: &desired,
	}
	if t := a.Status.LastInvocationAt; t != nil {
		at := t.Time
		s.LastInvocationAt = &at
	}
	// The same rule as the gateway's on Kubernetes (platform/kube.Failure).
	if reason, message, failing := v1alpha1.Failure(a); failing {
		s.Failure = &gateway.Failure{Reason: reason, Message: message}
	}
	return s
}
