package nodeagent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/flint-dev/flint/internal/testutil/reaper"
)

// Agent is a running node agent.
type Agent struct {
	cfg    Config
	client kubernetes.Interface
	ctx    context.Context // cancelled by Stop: API calls and loops end
	cancel context.CancelFunc
	marker string
	ips    *ipPool
	logs   *logStore
	reaper *reaper.Reaper
	binder *binder

	factories []informers.SharedInformerFactory

	imagesMu sync.RWMutex
	images   map[string]string

	mu       sync.Mutex
	stopped  bool
	workers  map[types.UID]*podWorker
	finished map[types.UID]bool // ran here and ended; its object may linger in the cache

	loops    sync.WaitGroup // informers, heartbeat, binder
	pods     sync.WaitGroup // pod workers
	stopOnce sync.Once
}

// Start registers the node and starts running pods. ctx bounds the start
// only (node registration, informer sync); the agent runs until Stop.
func Start(ctx context.Context, cfg Config) (*Agent, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	markerBytes := make([]byte, 8)
	_, _ = rand.Read(markerBytes)
	a := &Agent{
		cfg: cfg, client: cfg.Client, ips: newIPPool(cfg.IPPrefix),
		marker: cfg.NodeName + "-" + hex.EncodeToString(markerBytes),
		logs:   newLogStore(cfg.NodeName, cfg.Output),
		images: maps.Clone(cfg.Images), workers: map[types.UID]*podWorker{}, finished: map[types.UID]bool{},
	}
	a.ctx, a.cancel = context.WithCancel(context.Background())
	var err error
	if a.reaper, err = startReaper(a.marker); err != nil {
		a.cancel()
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			a.Stop()
		}
	}()
	if err := a.registerNode(ctx); err != nil {
		return nil, err
	}

	assigned := informers.NewSharedInformerFactoryWithOptions(a.client, 0, informers.WithTweakListOptions(
		func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", cfg.NodeName).String()
		}))
	podInformer := assigned.Core().V1().Pods().Informer()
	if _, err := podInformer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { a.podChanged(obj) },
		UpdateFunc: func(_, obj any) { a.podChanged(obj) },
		DeleteFunc: a.podRemoved,
	}); err != nil {
		return nil, fmt.Errorf("pod informer: %w", err)
	}
	if a.binder, err = newBinder(a); err != nil {
		return nil, err
	}
	assigned.Start(a.ctx.Done())
	a.binder.factory.Start(a.ctx.Done())
	a.factories = append(a.factories, assigned, a.binder.factory)
	for _, synced := range []cache.InformerSynced{podInformer.HasSynced, a.binder.informer.HasSynced} {
		if !cache.WaitForCacheSync(ctx.Done(), synced) {
			return nil, fmt.Errorf("nodeagent: pod informers did not sync: %w", context.Cause(ctx))
		}
	}
	a.loops.Go(a.binder.run)
	a.loops.Go(a.heartbeat)
	a.logs.event("node %s ready (pod IPs %s1-254, host IP %s)", cfg.NodeName, cfg.IPPrefix, cfg.HostIP)
	ok = true
	return a, nil
}

// StartForTest starts an agent that is stopped at t's cleanup, logging to t.
// cfg.Output, when nil, becomes t.Log.
func StartForTest(t testing.TB, cfg Config) *Agent {
	t.Helper()
	if cfg.Output == nil {
		cfg.Output = LogTo(t)
	}
	a, err := Start(t.Context(), cfg)
	if err != nil {
		t.Fatalf("nodeagent: %v", err)
	}
	t.Cleanup(a.Stop)
	return a
}

// Stop stops every pod's processes (stop signal, SIGKILL after
// Config.StopTimeout, no hooks) and waits for them. It leaves the API
// alone, like a kubelet that goes away: the Node and the pods stay. It is
// safe to call more than once.
func (a *Agent) Stop() {
	a.stopOnce.Do(func() {
		a.mu.Lock()
		a.stopped = true
		workers := make([]*podWorker, 0, len(a.workers))
		for _, w := range a.workers {
			workers = append(workers, w)
		}
		a.mu.Unlock()
		a.cancel()
		for _, w := range workers {
			w.objectGone()
		}
		a.pods.Wait()
		if a.binder != nil {
			a.binder.queue.ShutDown()
		}
		a.loops.Wait()
		for _, f := range a.factories {
			f.Shutdown() // waits for the informers' goroutines
		}
		a.ips.releaseAll()
		a.reaper.Stop()
	})
}

// Logs returns what container of pod ns/name has printed so far, over all
// its restarts (and after the pod is gone), like `kubectl logs` without
// --previous. Only the last MiB is kept.
func (a *Agent) Logs(ns, pod, container string) string {
	return a.logs.get(ns + "/" + pod + "/" + container)
}

// SetImage maps image to an executable from now on (an empty path removes
// it): a pod in ImagePullBackOff starts at its next pull.
func (a *Agent) SetImage(image, path string) {
	a.imagesMu.Lock()
	defer a.imagesMu.Unlock()
	if path == "" {
		delete(a.images, image)
	} else {
		a.images[image] = path
	}
}

// NodeName is the name of the agent's Node.
func (a *Agent) NodeName() string { return a.cfg.NodeName }

func (a *Agent) image(ref string) (string, bool) {
	a.imagesMu.RLock()
	defer a.imagesMu.RUnlock()
	p, ok := a.images[ref]
	return p, ok
}

// podChanged handles an added or updated pod assigned to this node.
func (a *Agent) podChanged(obj any) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.stopped {
		return
	}
	if w := a.workers[pod.UID]; w != nil {
		w.update(pod)
		return
	}
	if a.finished[pod.UID] || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return
	}
	if pod.DeletionTimestamp != nil {
		// Never started here: nothing to stop, only the object to remove.
		a.finished[pod.UID] = true
		a.loops.Go(func() { a.deleteNeverStarted(pod) })
		return
	}
	ip, err := a.ips.allocate()
	if err != nil {
		a.logs.event("%s/%s: cannot start: %v", pod.Namespace, pod.Name, err)
		return // retried at the pod's next update
	}
	w := newPodWorker(a, pod, ip)
	a.workers[pod.UID] = w
	a.pods.Go(func() {
		w.run()
		a.mu.Lock()
		delete(a.workers, w.uid)
		a.finished[w.uid] = true
		a.mu.Unlock()
	})
}

// podRemoved handles a pod object that is gone (deleted with grace period
// 0 by us or by a force delete, or no longer on this node).
func (a *Agent) podRemoved(obj any) {
	if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.finished, pod.UID)
	if w := a.workers[pod.UID]; w != nil {
		w.objectGone()
	}
}
