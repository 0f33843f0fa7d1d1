package controller

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crcontroller "sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/flint-dev/flint/api/v1alpha1"
	"github.com/flint-dev/flint/internal/reload"
)

const (
	kindDeployment = "Deployment"
	kindService    = "Service"
	// ControllerName names the controller in logs and metrics.
	ControllerName = "agent"
)

// Reconciler turns Agents into Deployments and Services and reports their
// state. It implements reconcile.Reconciler.
type Reconciler struct {
	client   client.Client
	cfg      Config
	recorder events.EventRecorder
	metrics  *metrics
	memo     applyMemo
	// Sidecar TLS (sidecartls.go): the CA, what is known of each agent's
	// certificate, the clock renewals are decided by, and an uncached
	// reader for Secrets and ConfigMaps (nil: client).
	ca        *caStore
	certs     certMemo
	now       func() time.Time
	apiReader client.Reader
}

// NewReconciler returns a reconciler. c should read from the manager's cache
// (mgr.GetClient()); recorder may be nil (no Events); reg may be nil (no
// metrics are exported).
func NewReconciler(c client.Client, cfg Config, recorder events.EventRecorder, reg prometheus.Registerer) (*Reconciler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("agent controller: %w", err)
	}
	if err := cfg.LoadGatewayToken(slog.New(logr.ToSlogHandler(log.Log.WithName("gateway-token")))); err != nil {
		return nil, fmt.Errorf("agent controller: %w", err)
	}
	if err := cfg.SidecarTLS.resolveNamespace(); err != nil {
		return nil, fmt.Errorf("agent controller: %w", err)
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	r := &Reconciler{client: c, cfg: cfg, recorder: recorder, metrics: m, now: time.Now}
	r.ca = &caStore{cfg: cfg.SidecarTLS, reader: r.reader, writer: c}
	return r, nil
}

// reader reads what the manager does not cache (Secrets, ConfigMaps).
func (r *Reconciler) reader() client.Reader {
	if r.apiReader != nil {
		return r.apiReader
	}
	return r.client
}

// SetupWithManager registers the reconciler with mgr. Status-only changes
// to an Agent (its own writes, the gateways' lastInvocationAt) do not
// reconcile it; spec changes, including scale, do.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	r.apiReader = mgr.GetAPIReader()
	if r.cfg.gatewayToken != nil {
		if err := mgr.Add(gatewayTokenFollower{r: r, every: reload.Interval}); err != nil {
			return fmt.Errorf("gateway token: %w", err)
		}
	}
	if r.cfg.SidecarTLS.Enabled {
		if err := mgr.Add(caBootstrap{r}); err != nil {
			return fmt.Errorf("sidecar CA: %w", err)
		}
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named(ControllerName).
		For(&v1alpha1.Agent{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Owns(&appsv1.Deployment{}).
		Owns(&corev1.Service{}).
		Watches(&corev1.Pod{}, handler.EnqueueRequestsFromMapFunc(podToAgent), builder.WithPredicates(podHealthChanged())).
		WithOptions(crcontroller.Options{MaxConcurrentReconciles: r.cfg.MaxConcurrentReconciles}).
		Complete(r)
}

// Reconcile implements reconcile.Reconciler.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	res, err := r.reconcile(ctx, req)
	if err != nil && ctx.Err() != nil {
		return ctrl.Result{}, nil // shutting down: the next leader reconciles again
	}
	return res, err
}

func (r *Reconciler) reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	nn := req.NamespacedName
	var agent v1alpha1.Agent
	if err := r.client.Get(ctx, nn, &agent); err != nil {
		if apierrors.IsNotFound(err) {
			// Its Deployment and Service go with it: they are owned.
			r.memo.forget(nn)
			r.certs.forget(types.NamespacedName{Namespace: nn.Namespace, Name: SidecarTLSSecretName(nn.Name)})
			r.metrics.setReason(nn, "")
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, fmt.Errorf("get agent %s: %w", nn, err)
	}
	if !agent.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	a := agent.DeepCopy()
	a.Default()
	obs := observation{agent: a, desired: v1alpha1.DesiredReplicas(a)}

	// The API server's CEL rules refuse invalid Agents; this catches ones
	// stored before a rule existed. Nothing is applied for them: a
	// spec change reconciles again.
	if errs := a.Validate(false); len(errs) > 0 {
		obs.failure = &agentFailure{Reason: v1alpha1.ReasonInvalidSpec, Message: errs.ToAggregate().Error()}
		return ctrl.Result{}, r.updateStatus(ctx, &agent, obs)
	}
	// The transport annotation is metadata, out of the CRD rules' reach.
	if _, err := stdioAgent(a); err != nil {
		obs.failure = &agentFailure{Reason: v1alpha1.ReasonInvalidSpec, Message: err.Error()}
		return ctrl.Result{}, r.updateStatus(ctx, &agent, obs)
	}

	obs.template = r.cfg.templateHash(a)
	// The Secrets first: pods that mount them cannot start without them.
	err := r.applyGatewaySecret(ctx, a)
	var renewAt time.Time
	if err == nil {
		renewAt, err = r.applyServingCert(ctx, a)
	}
	var deploy *appsv1.Deployment
	if err == nil {
		deploy, err = r.applyDeployment(ctx, a)
	}
	if err == nil {
		err = r.applyService(ctx, a, deploy)
	}
	if apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
		// The namespace is being deleted, the Agent with it: nothing to
		// recreate, and retrying would only log the same refusal.
		return ctrl.Result{}, nil
	}
	if err != nil {
		obs.failure = &agentFailure{Reason: v1alpha1.ReasonReconcileFailed, Message: err.Error()}
		if serr := r.updateStatus(ctx, &agent, obs); serr != nil && ctx.Err() == nil {
			log.FromContext(ctx).Error(serr, "cannot record the reconcile failure in status")
		}
		return ctrl.Result{}, err
	}
	obs.deployment = deploy

	var pods corev1.PodList
	if err := r.client.List(ctx, &pods, client.InNamespace(a.Namespace), client.MatchingLabels(selectorFor(a))); err != nil {
		return ctrl.Result{}, fmt.Errorf("list pods of agent %s: %w", nn, err)
	}
	obs.pods = pods.Items
	if err := r.updateStatus(ctx, &agent, obs); err != nil {
		return ctrl.Result{}, err
	}
	// Back just after the certificate is due for renewal.
	return ctrl.Result{RequeueAfter: certRequeue(renewAt, r.now())}, nil
}

// applyDeployment applies the agent's Deployment unless the memo shows the
// cached one is what the last apply produced, and returns the Deployment as
// the reconciler last saw it (nil if it is not in the cache yet).
func (r *Reconciler) applyDeployment(ctx context.Context, a *v1alpha1.Agent) (*appsv1.Deployment, error) {
	nn := types.NamespacedName{Namespace: a.Namespace, Name: a.Name}
	desired, err := r.cfg.desiredDeployment(a)
	if err != nil {
		return nil, fmt.Errorf("build Deployment %s: %w", nn, err)
	}
	hash, err := hashOf(desired)
	if err != nil {
		return nil, err
	}
	var current appsv1.Deployment
	found, err := r.getCached(ctx, nn, &current)
	if err != nil {
		return nil, err
	}
	key := r.memo.key(kindDeployment, nn)
	// A Deployment's generation moves on every spec change by anyone.
	if found && r.memo.upToDate(key, hash, current.UID, strconv.FormatInt(current.Generation, 10)) {
		r.metrics.applies.WithLabelValues(kindDeployment, "skipped").Inc()
		return &current, nil
	}
	if err := r.client.Apply(ctx, desired, client.FieldOwner(FieldOwner), client.ForceOwnership); err != nil {
		r.metrics.applies.WithLabelValues(kindDeployment, "error").Inc()
		return nil, fmt.Errorf("apply Deployment %s: %w", nn, err)
	}
	r.metrics.applies.WithLabelValues(kindDeployment, "applied").Inc()
	// desired now holds the API server's answer.
	var applied appsv1.Deployment
	if err := convert(desired, &applied); err != nil {
		return nil, fmt.Errorf("read applied Deployment %s: %w", nn, err)
	}
	r.memo.remember(key, appliedRecord{hash: hash, uid: applied.UID, version: strconv.FormatInt(applied.Generation, 10)})
	return &applied, nil
}

// applyService applies the agent's Service unless nothing changed since the
// last apply.
func (r *Reconciler) applyService(ctx context.Context, a *v1alpha1.Agent, deploy *appsv1.Deployment) error {
	nn := types.NamespacedName{Namespace: a.Namespace, Name: a.Name}
	desired := desiredService(a, r.cfg.SidecarTLS.Enabled && rolledOut(deploy))
	hash, err := hashOf(desired)
	if err != nil {
		return err
	}
	var current corev1.Service
	found, err := r.getCached(ctx, nn, &current)
	if err != nil {
		return err
	}
	key := r.memo.key(kindService, nn)
	// Services have no generation; their resourceVersion moves on any
	// write, and they are rarely written.
	if found && r.memo.upToDate(key, hash, current.UID, current.ResourceVersion) {
		r.metrics.applies.WithLabelValues(kindService, "skipped").Inc()
		return nil
	}
	if err := r.client.Apply(ctx, desired, client.FieldOwner(FieldOwner), client.ForceOwnership); err != nil {
		r.metrics.applies.WithLabelValues(kindService, "error").Inc()
		return fmt.Errorf("apply Service %s: %w", nn, err)
	}
	r.metrics.applies.WithLabelValues(kindService, "applied").Inc()
	r.memo.remember(key, appliedRecord{hash: hash, uid: deref(desired.UID), version: deref(desired.ResourceVersion)})
	return nil
}

// getCached reads obj from the cache; found is false when it does not exist.
func (r *Reconciler) getCached(ctx context.Context, nn types.NamespacedName, obj client.Object) (found bool, err error) {
	if err := r.client.Get(ctx, nn, obj); err != nil {
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return false, fmt.Errorf("get %T %s: %w", obj, nn, err)
	}
	return true, nil
}

// updateStatus writes the agent's status if it changed, as a merge patch of
// the changed fields only, so it never overwrites lastInvocationAt written
// meanwhile by a gateway.
func (r *Reconciler) updateStatus(ctx context.Context, agent *v1alpha1.Agent, obs observation) error {
	nn := types.NamespacedName{Namespace: agent.Namespace, Name: agent.Name}
	status := r.cfg.computeStatus(agent.Status, obs)
	r.noteReadyTransition(agent, status)
	if equality.Semantic.DeepEqual(agent.Status, status) {
		return nil
	}
	patch := client.MergeFrom(agent.DeepCopy())
	agent.Status = status
	if err := r.client.Status().Patch(ctx, agent, patch); err != nil {
		if apierrors.IsNotFound(err) {
			return nil // deleted meanwhile
		}
		return fmt.Errorf("update status of agent %s: %w", nn, err)
	}
	return nil
}

// noteReadyTransition updates the metrics and records Events: a Warning
// with the reason when the agent starts failing or fails differently, so
// `kubectl describe` shows when and why; Recovered only when a replica is
// ready again after a failure (not when a failing agent merely scales to
// zero or restarts); and a Normal Scaled event when the replicas asked for
// change. Other routine transitions are not recorded.
func (r *Reconciler) noteReadyTransition(agent *v1alpha1.Agent, status v1alpha1.AgentStatus) {
	cur := meta.FindStatusCondition(status.Conditions, v1alpha1.ConditionReady)
	if cur == nil {
		return
	}
	r.metrics.setReason(types.NamespacedName{Namespace: agent.Namespace, Name: agent.Name}, cur.Reason)
	if r.recorder == nil {
		return
	}
	if old := agent.Status.DesiredReplicas; agent.Status.Selector != "" && old != status.DesiredReplicas {
		r.recorder.Eventf(agent, nil, corev1.EventTypeNormal, v1alpha1.ReasonScaled, "Scale",
			"scaled from %d to %d replica(s)", old, status.DesiredReplicas)
	}
	prev := meta.FindStatusCondition(agent.Status.Conditions, v1alpha1.ConditionReady)
	if prev != nil && prev.Reason == cur.Reason {
		return
	}
	switch {
	case v1alpha1.IsFailure(cur):
		r.recorder.Eventf(agent, nil, corev1.EventTypeWarning, cur.Reason, "Reconcile", "%s", cur.Message)
	case cur.Status == metav1.ConditionTrue && cur.Reason == v1alpha1.ReasonReady:
		// The failure may have been followed by a while of Progressing
		// (the pod running, not yet counted ready): lastFailure remembers it.
		was := ""
		if prev != nil && v1alpha1.IsFailure(prev) {
			was = prev.Reason
		} else if f := agent.Status.LastFailure; f != nil {
			was = f.Reason
		}
		if was != "" {
			r.recorder.Eventf(agent, nil, corev1.EventTypeNormal, v1alpha1.ReasonRecovered, "Reconcile", "no longer %s: %s", was, cur.Message)
		}
	}
}

// podToAgent maps a pod to the Agent it runs, from its agent label.
func podToAgent(_ context.Context, obj client.Object) []reconcile.Request {
	name := obj.GetLabels()[v1alpha1.LabelAgent]
	if name == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: obj.GetNamespace(), Name: name}}}
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
