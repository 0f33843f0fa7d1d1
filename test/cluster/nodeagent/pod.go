package nodeagent

import (
	"context"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// defaultGracePeriod is the API's default terminationGracePeriodSeconds.
const defaultGracePeriod = 30 * time.Second

// minGracePeriod is the kubelet's minimumGracePeriodInSeconds: a container
// always gets at least this long between its stop signal and SIGKILL.
const minGracePeriod = 2 * time.Second

// podWorker runs one pod, from its first sight on this node to the removal
// of its object: the kubelet's pod worker.
type podWorker struct {
	a        *Agent
	uid      types.UID
	ns, name string
	key      string // "ns/name"
	ip       string

	podSpec *corev1.PodSpec // the spec the containers run from; never changes

	mu         sync.Mutex
	pod        *corev1.Pod // latest seen
	startTime  metav1.Time
	initFailed bool // a regular init container failed for good
	completed  bool // no container runs or will run again: the phase is terminal
	grace      time.Duration

	inits []*containerRunner // spec.initContainers, in order
	mains []*containerRunner // spec.containers

	terminating chan struct{} // closed when the pod has a deletionTimestamp
	termOnce    sync.Once
	hurry       chan struct{} // closed when the object is gone or the agent stops
	hurryOnce   sync.Once

	dirty      chan struct{} // a status change waits to be sent
	statusMu   sync.Mutex    // one status write at a time
	lastSent   *corev1.PodStatus
	conditions map[corev1.PodConditionType]corev1.PodCondition

	done chan struct{}
}

func newPodWorker(a *Agent, pod *corev1.Pod, ip string) *podWorker {
	w := &podWorker{
		a: a, uid: pod.UID, ns: pod.Namespace, name: pod.Name, key: pod.Namespace + "/" + pod.Name, ip: ip,
		pod: pod.DeepCopy(), startTime: metav1.Now(),
		terminating: make(chan struct{}), hurry: make(chan struct{}), dirty: make(chan struct{}, 1),
		conditions: map[corev1.PodConditionType]corev1.PodCondition{}, done: make(chan struct{}),
	}
	w.podSpec = &w.pod.Spec
	spec := w.podSpec
	for i := range spec.InitContainers {
		c := &spec.InitContainers[i]
		kind := initKind
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			kind = sidecarKind
		}
		w.inits = append(w.inits, newContainerRunner(w, c, kind, "PodInitializing"))
	}
	mainReason := "ContainerCreating"
	if len(spec.InitContainers) > 0 {
		mainReason = "PodInitializing"
	}
	for i := range spec.Containers {
		w.mains = append(w.mains, newContainerRunner(w, &spec.Containers[i], mainKind, mainReason))
	}
	return w
}

// ctx is the agent's: API calls end when the agent stops.
func (w *podWorker) ctx() context.Context { return w.a.ctx }

func (w *podWorker) currentPod() *corev1.Pod {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.pod
}

// spec is the pod spec the worker started with (containers cannot change
// without the kubelet restarting them, which is not emulated).
func (w *podWorker) spec() *corev1.PodSpec { return w.podSpec }

func (w *podWorker) specGrace() time.Duration {
	if g := w.podSpec.TerminationGracePeriodSeconds; g != nil {
		return time.Duration(*g) * time.Second
	}
	return defaultGracePeriod
}

// update takes a newer version of the pod object from the informer.
func (w *podWorker) update(pod *corev1.Pod) {
	w.mu.Lock()
	// The spec stays the one the containers were started from; metadata
	// and status (e.g. others' conditions) follow the API.
	p := pod.DeepCopy()
	p.Spec = *w.podSpec
	w.pod = p
	w.mu.Unlock()
	w.markDirty() // others' conditions (readiness gates) may have changed; unchanged status is not written
	if pod.DeletionTimestamp != nil {
		w.termOnce.Do(func() {
			grace := w.specGrace()
			if g := pod.DeletionGracePeriodSeconds; g != nil {
				grace = time.Duration(*g) * time.Second
			}
			w.mu.Lock()
			w.grace = grace
			w.mu.Unlock()
			close(w.terminating)
		})
	}
}

// objectGone reports that the pod object was removed (or the agent stops):
// its processes are killed without hooks, within Config.StopTimeout.
func (w *podWorker) objectGone() { w.hurryOnce.Do(func() { close(w.hurry) }) }

func (w *podWorker) hurried() bool {
	select {
	case <-w.hurry:
		return true
	default:
		return false
	}
}

// run is the pod's life on this node.
func (w *podWorker) run() {
	defer close(w.done)
	stopStatus := make(chan struct{})
	statusDone := make(chan struct{})
	go func() {
		defer close(statusDone)
		w.statusLoop(stopStatus)
	}()
	w.a.logs.event("%s: starting pod on %s", w.key, w.ip)
	w.markDirty()

	if w.initialize() {
		for _, r := range w.mains {
			r.launch()
		}
		select {
		case <-allClosed(w.mains):
			// Every container completed per restart policy: the pod is
			// done; its sidecars are stopped as at deletion.
			w.a.logs.event("%s: all containers completed", w.key)
			w.shutdown(w.specGrace())
			w.setCompleted()
		case <-w.terminating:
		case <-w.hurry:
		}
	} else if !w.hurried() && !w.isTerminating() {
		// A regular init container failed and will not be retried.
		w.shutdown(w.specGrace())
		w.setCompleted()
	}
	select {
	case <-w.terminating:
	case <-w.hurry:
	}

	grace := w.deletionGrace()
	if w.hurried() {
		grace = w.a.cfg.StopTimeout
	}
	w.shutdown(grace)
	w.setCompleted()
	close(stopStatus)
	<-statusDone
	w.a.ips.release(w.ip)
	if w.hurried() {
		return // the object is gone or the agent stops: nothing to write
	}
	// As the kubelet: a terminal phase, then remove the object.
	if err := w.syncStatus(w.ctx()); err != nil {
		w.a.logs.event("%s: final status: %v", w.key, err)
	}
	err := w.a.client.CoreV1().Pods(w.ns).Delete(w.ctx(), w.name, metav1.DeleteOptions{
		GracePeriodSeconds: new(int64), Preconditions: metav1.NewUIDPreconditions(string(w.uid)),
	})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		w.a.logs.event("%s: delete pod: %v", w.key, err)
		return
	}
	w.a.logs.event("%s: pod deleted", w.key)
}

// initialize runs the init containers in order: a regular one to
// completion, a sidecar until it has started (its startup probe passed, if
// it has one). It reports whether the main containers may start.
func (w *podWorker) initialize() bool {
	for _, r := range w.inits {
		r.launch()
		wait := r.loopDone
		if r.kind == sidecarKind {
			wait = r.startedCh
		}
		select {
		case <-wait:
		case <-w.terminating:
			return false
		case <-w.hurry:
			return false
		}
		if r.kind == initKind && !r.status().Ready {
			w.mu.Lock()
			w.initFailed = true
			w.mu.Unlock()
			w.markDirty()
			return false
		}
	}
	return true
}

func (w *podWorker) isTerminating() bool {
	select {
	case <-w.terminating:
		return true
	default:
		return false
	}
}

func (w *podWorker) deletionGrace() time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.grace
}

func (w *podWorker) setCompleted() {
	w.mu.Lock()
	w.completed = true
	w.mu.Unlock()
	w.markDirty()
}

// allClosed returns a channel closed once every runner's loop has ended.
func allClosed(rs []*containerRunner) <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		for _, r := range rs {
			<-r.loopDone
		}
		close(ch)
	}()
	return ch
}
