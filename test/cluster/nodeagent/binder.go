package nodeagent

import (
	"context"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// binder is the scheduler: it binds every pending pod that nobody else
// schedules to this node.
type binder struct {
	a        *Agent
	factory  informers.SharedInformerFactory
	informer cache.SharedIndexInformer
	lister   cache.Indexer
	queue    workqueue.TypedRateLimitingInterface[cache.ObjectName]
}

func newBinder(a *Agent) (*binder, error) {
	// The scheduler's own selector: unassigned pods that are not finished.
	selector := fields.AndSelectors(
		fields.OneTermEqualSelector("spec.nodeName", ""),
		fields.OneTermNotEqualSelector("status.phase", string(corev1.PodSucceeded)),
		fields.OneTermNotEqualSelector("status.phase", string(corev1.PodFailed)),
	).String()
	b := &binder{
		a: a,
		factory: informers.NewSharedInformerFactoryWithOptions(a.client, 0, informers.WithTweakListOptions(
			func(o *metav1.ListOptions) { o.FieldSelector = selector })),
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[cache.ObjectName](),
			workqueue.TypedRateLimitingQueueConfig[cache.ObjectName]{Name: "nodeagent-binder"}),
	}
	b.informer = b.factory.Core().V1().Pods().Informer()
	b.lister = b.informer.GetIndexer()
	enqueue := func(obj any) {
		if pod, ok := obj.(*corev1.Pod); ok && b.wants(pod) {
			b.queue.Add(cache.MetaObjectToName(pod))
		}
	}
	if _, err := b.informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
	}); err != nil {
		return nil, err
	}
	return b, nil
}

// wants reports whether pod is for this node to schedule: pending, not
// being deleted, in a watched namespace, and for the default scheduler (a
// test keeps a pod Pending with any other schedulerName).
func (b *binder) wants(pod *corev1.Pod) bool {
	ns := b.a.cfg.Namespaces
	return pod.Spec.NodeName == "" && pod.DeletionTimestamp == nil &&
		(pod.Spec.SchedulerName == "" || pod.Spec.SchedulerName == corev1.DefaultSchedulerName) &&
		(len(ns) == 0 || slices.Contains(ns, pod.Namespace))
}

func (b *binder) run() {
	for {
		name, shutdown := b.queue.Get()
		if shutdown {
			return
		}
		if err := b.bind(b.a.ctx, name); err != nil {
			if b.a.ctx.Err() == nil {
				b.a.logs.event("%s: bind (will retry): %v", name, err)
			}
			b.queue.AddRateLimited(name)
		} else {
			b.queue.Forget(name)
		}
		b.queue.Done(name)
	}
}

func (b *binder) bind(ctx context.Context, name cache.ObjectName) error {
	obj, exists, err := b.lister.GetByKey(name.String())
	if err != nil || !exists {
		return err
	}
	pod := obj.(*corev1.Pod)
	if !b.wants(pod) {
		return nil
	}
	err = b.a.client.CoreV1().Pods(pod.Namespace).Bind(ctx, &corev1.Binding{
		ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace, UID: pod.UID},
		Target:     corev1.ObjectReference{Kind: "Node", Name: b.a.cfg.NodeName},
	}, metav1.CreateOptions{})
	switch {
	case apierrors.IsConflict(err), apierrors.IsNotFound(err):
		return nil // bound by someone else meanwhile, or gone
	case err != nil:
		return err
	}
	b.a.logs.event("%s: bound to %s", name, b.a.cfg.NodeName)
	return nil
}
