package nodeagent

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

type containerKind int

const (
	initKind    containerKind = iota // regular init container: runs to completion
	sidecarKind                      // init container with restartPolicy Always (KEP-753)
	mainKind                         // spec.containers
)

// containerRunner runs one container of a pod: it starts instances,
// restarts them per restart policy with back-off, runs their probes and
// keeps the container's status.
type containerRunner struct {
	w    *podWorker
	spec *corev1.Container
	kind containerKind
	key  string // "ns/pod/container", for logs

	mu          sync.Mutex
	state       corev1.ContainerState // its pointers are replaced, never mutated: status() shares them
	lastState   corev1.ContainerState
	restarts    int32
	instances   int
	ready       bool
	started     bool
	containerID string
	imageID     string
	proc        *process // current or last instance
	launched    bool     // run was started: loopDone will close
	stopping    bool

	stopCh    chan struct{} // closed by stop: no further instance, back-off waits end
	startedCh chan struct{} // closed the first time the container counts as started
	loopDone  chan struct{} // closed when run has returned
	startOnce sync.Once
}

func newContainerRunner(w *podWorker, spec *corev1.Container, kind containerKind, waitingReason string) *containerRunner {
	return &containerRunner{
		w: w, spec: spec, kind: kind, key: w.key + "/" + spec.Name,
		state:  corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: waitingReason}},
		stopCh: make(chan struct{}), startedCh: make(chan struct{}), loopDone: make(chan struct{}),
	}
}

type backoff struct{ first, max, cur time.Duration }

func (b *backoff) next() time.Duration {
	if b.cur == 0 {
		b.cur = b.first
	} else {
		b.cur = min(2*b.cur, b.max)
	}
	return b.cur
}

// launch starts run in a goroutine of its own.
func (r *containerRunner) launch() {
	r.mu.Lock()
	r.launched = true
	r.mu.Unlock()
	go r.run()
}

func (r *containerRunner) wasLaunched() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.launched
}

// run starts instances until the container is done: completed (init
// containers, or per restart policy) or stopped.
func (r *containerRunner) run() {
	defer close(r.loopDone)
	cfg := r.w.a.cfg
	pull := backoff{first: cfg.RestartBackoff, max: cfg.MaxRestartBackoff}
	crash := backoff{first: cfg.RestartBackoff, max: cfg.MaxRestartBackoff}
	for crashes := 0; ; {
		l, err := r.w.buildLaunch(r.w.ctx(), r.spec)
		var pullErr *imagePullError
		var cfgErr *configError
		switch {
		case errors.As(err, &pullErr):
			// The kubelet's sequence: ErrImagePull, then ImagePullBackOff
			// until the back-off has passed, then another pull.
			d := pull.next()
			r.setWaiting("ErrImagePull", pullErr.Error())
			if !r.sleep(d) {
				return
			}
			r.setWaiting("ImagePullBackOff", fmt.Sprintf("Back-off pulling image %q: ErrImagePull: %s", r.spec.Image, pullErr))
			if !r.sleep(d) {
				return
			}
			continue
		case errors.As(err, &cfgErr):
			r.setWaiting("CreateContainerConfigError", cfgErr.Error())
			if !r.sleep(pull.next()) {
				return
			}
			continue
		}
		pull.cur = 0
		exit, ranFor, ok := r.runInstance(l, err)
		if !ok {
			return // stopped before it started
		}
		if r.isStopping() || !r.shouldRestart(exit.ExitCode) {
			return
		}
		// Like the kubelet: the first restart is immediate, later ones back
		// off; a run longer than the longest back-off resets the series.
		if ranFor >= cfg.MaxRestartBackoff {
			crashes, crash.cur = 0, 0
		}
		crashes++
		if crashes > 1 {
			d := crash.next()
			r.setWaiting("CrashLoopBackOff", fmt.Sprintf("back-off %s restarting failed container=%s pod=%s_%s(%s)",
				d, r.spec.Name, r.w.name, r.w.ns, r.w.uid))
			if !r.sleep(d) {
				return
			}
		}
	}
}

// runInstance starts one instance (unless startErr says it cannot start),
// probes it until it exits and records its termination. ok is false when
// the runner was stopped before anything started.
func (r *containerRunner) runInstance(l launch, startErr error) (exit corev1.ContainerStateTerminated, ranFor time.Duration, ok bool) {
	r.mu.Lock()
	if r.stopping {
		r.mu.Unlock()
		return exit, 0, false
	}
	var p *process
	if startErr == nil {
		p, startErr = startProcess(l, r.w.a.logs, r.key, processHooks{
			onStart: func(p *process) {
				r.w.a.logs.event("%s: started container %s (pid %d): %q", r.w.key, r.spec.Name, p.pid, l.args)
			},
			onExit: func(p *process) {
				r.w.a.logs.event("%s: container %s exited with code %d", r.w.key, r.spec.Name, p.exitCode)
			},
		})
	}
	now := metav1.Now()
	r.instances++
	if r.instances > 1 {
		r.restarts++
		if r.state.Terminated != nil {
			r.lastState = corev1.ContainerState{Terminated: r.state.Terminated}
		}
	}
	if startErr != nil {
		// What a runtime reports for an exec failure: exit 128, StartError.
		exit = corev1.ContainerStateTerminated{ExitCode: 128, Reason: "StartError", Message: startErr.Error(), StartedAt: now, FinishedAt: now}
		r.setTerminatedLocked(&exit)
		r.mu.Unlock()
		r.w.a.logs.event("%s: container %s failed to start: %v", r.w.key, r.spec.Name, startErr)
		return exit, 0, true
	}
	r.proc = p
	r.containerID = "flint-nodeagent://" + strconv.Itoa(p.pid)
	r.imageID = "flint-nodeagent://" + l.path
	r.state = corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}}
	r.ready = false
	r.mu.Unlock()
	r.w.markDirty()

	ctx, cancel := context.WithCancel(context.Background())
	probed := make(chan struct{})
	go func() {
		defer close(probed)
		r.probe(ctx, p)
	}()
	<-p.done
	cancel()
	<-probed

	exit = corev1.ContainerStateTerminated{
		ExitCode: p.exitCode, Signal: int32(p.signal), Reason: "Completed",
		StartedAt: metav1.NewTime(p.started), FinishedAt: metav1.NewTime(p.finished), ContainerID: r.containerID,
	}
	if p.exitCode != 0 {
		exit.Reason = "Error"
	}
	r.mu.Lock()
	r.setTerminatedLocked(&exit)
	r.mu.Unlock()
	return exit, p.finished.Sub(p.started), true
}

func (r *containerRunner) setTerminatedLocked(t *corev1.ContainerStateTerminated) {
	r.state = corev1.ContainerState{Terminated: t}
	r.started = false
	// A regular init container that completed counts as ready.
	r.ready = r.kind == initKind && t.ExitCode == 0
	r.w.markDirty()
}

func (r *containerRunner) shouldRestart(exitCode int32) bool {
	switch {
	case r.kind == sidecarKind:
		return true
	case r.kind == initKind:
		return exitCode != 0 && r.w.spec().RestartPolicy != corev1.RestartPolicyNever
	}
	switch r.w.spec().RestartPolicy {
	case corev1.RestartPolicyNever:
		return false
	case corev1.RestartPolicyOnFailure:
		return exitCode != 0
	}
	return true
}

func (r *containerRunner) setWaiting(reason, message string) {
	r.mu.Lock()
	r.state = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: message}}
	if r.instances > 0 { // a restart: what ended last time stays visible
		if t := r.lastTerminated(); t != nil {
			r.lastState = corev1.ContainerState{Terminated: t}
		}
	}
	r.ready, r.started = false, false
	r.mu.Unlock()
	r.w.a.logs.event("%s: container %s waiting: %s: %s", r.w.key, r.spec.Name, reason, message)
	r.w.markDirty()
}

// lastTerminated is the termination of the last instance, if it has ended.
func (r *containerRunner) lastTerminated() *corev1.ContainerStateTerminated {
	if r.state.Terminated != nil {
		return r.state.Terminated
	}
	return r.lastState.Terminated
}

func (r *containerRunner) setStarted() {
	r.mu.Lock()
	r.started = true
	if r.spec.ReadinessProbe == nil && r.kind != initKind {
		r.ready = true
	}
	r.mu.Unlock()
	r.startOnce.Do(func() { close(r.startedCh) })
	r.w.markDirty()
}

func (r *containerRunner) setReady(ready bool) {
	r.mu.Lock()
	changed := r.ready != ready && r.state.Running != nil
	if changed {
		r.ready = ready
	}
	r.mu.Unlock()
	if changed {
		r.w.a.logs.event("%s: container %s ready: %v", r.w.key, r.spec.Name, ready)
		r.w.markDirty()
	}
}

// sleep waits d unless the runner is stopped; it reports whether to go on.
func (r *containerRunner) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.stopCh:
		return false
	}
}

// stop prevents further instances and ends back-off waits; it does not
// signal a running instance (terminate does, in the kubelet's order).
func (r *containerRunner) stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.stopping {
		r.stopping = true
		close(r.stopCh)
	}
}

func (r *containerRunner) isStopping() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stopping
}

// running returns the running instance, or nil.
func (r *containerRunner) running() *process {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.proc != nil && !r.proc.exited() {
		return r.proc
	}
	return nil
}

func (r *containerRunner) status() corev1.ContainerStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	started := r.started
	return corev1.ContainerStatus{
		Name: r.spec.Name, Image: r.spec.Image, ImageID: r.imageID, ContainerID: r.containerID,
		State: r.state, LastTerminationState: r.lastState,
		Ready: r.ready, RestartCount: r.restarts, Started: &started,
	}
}

// stopSignal is the container's lifecycle.stopSignal, else SIGTERM.
func (r *containerRunner) stopSignal() syscall.Signal {
	if lc := r.spec.Lifecycle; lc != nil && lc.StopSignal != nil {
		if sig, ok := signalsByName[*lc.StopSignal]; ok {
			return sig
		}
	}
	return syscall.SIGTERM
}

var signalsByName = map[corev1.Signal]syscall.Signal{
	"SIGTERM": syscall.SIGTERM, "SIGINT": syscall.SIGINT, "SIGQUIT": syscall.SIGQUIT,
	"SIGHUP": syscall.SIGHUP, "SIGKILL": syscall.SIGKILL, "SIGUSR1": syscall.SIGUSR1, "SIGUSR2": syscall.SIGUSR2,
	"SIGWINCH": syscall.SIGWINCH,
}
