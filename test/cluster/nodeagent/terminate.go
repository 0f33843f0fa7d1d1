package nodeagent

import (
	"context"
	"sync"
	"time"
)

// shutdown stops every container of the pod the way the kubelet's
// killContainersWithSyncResult does, with KEP-753's termination ordering:
//
//  1. No container is started or restarted any more.
//  2. Every running container's preStop hook runs, all at once (sidecars'
//     too), each bounded by the grace period.
//  3. Regular containers get their stop signal (SIGTERM unless
//     lifecycle.stopSignal says otherwise) as soon as their hook returns.
//     A sidecar waits for its turn: until every regular container and every
//     sidecar declared after it has exited, or the grace period is over.
//  4. A container still running max(what is left of the grace period, 2s)
//     after its stop signal is SIGKILLed (with its process group).
//
// When the pod object is gone or the agent stops (hurry), hooks are
// skipped and everything gets Config.StopTimeout. shutdown returns once no
// container runs and every runner has recorded its last state.
func (w *podWorker) shutdown(grace time.Duration) {
	start := time.Now()
	deadline := start.Add(grace)
	all := append(append([]*containerRunner{}, w.inits...), w.mains...)
	for _, r := range all {
		r.stop()
	}

	var wg sync.WaitGroup
	var regularDone []<-chan struct{}
	for _, r := range all {
		if r.kind == sidecarKind {
			continue
		}
		if p := r.running(); p != nil {
			done := make(chan struct{})
			regularDone = append(regularDone, done)
			wg.Go(func() {
				defer close(done)
				w.stopContainer(r, p, deadline, nil)
			})
		}
	}
	// Sidecars in reverse order: each waits for the regular containers and
	// for the sidecars after it.
	var laterSidecarsDone []<-chan struct{}
	for i := len(w.inits) - 1; i >= 0; i-- {
		r := w.inits[i]
		if r.kind != sidecarKind {
			continue
		}
		p := r.running()
		if p == nil {
			continue
		}
		prereqs := append(append([]<-chan struct{}{}, regularDone...), laterSidecarsDone...)
		done := make(chan struct{})
		laterSidecarsDone = append(laterSidecarsDone, done)
		wg.Go(func() {
			defer close(done)
			w.stopContainer(r, p, deadline, prereqs)
		})
	}
	wg.Wait()
	for _, r := range all {
		if r.wasLaunched() {
			<-r.loopDone
		}
	}
}

// stopContainer runs r's preStop hook, waits for prereqs (its turn), then
// stops instance p with what is left of the grace period (at least
// minGracePeriod).
func (w *podWorker) stopContainer(r *containerRunner, p *process, deadline time.Time, prereqs []<-chan struct{}) {
	if lc := r.spec.Lifecycle; lc != nil && lc.PreStop != nil && !w.hurried() && time.Until(deadline) > 0 {
		w.a.logs.event("%s: running preStop hook of %s", w.key, r.spec.Name)
		ctx, cancel := w.hurryContext(deadline)
		err := w.runAction(ctx, r.spec, hookAction(lc.PreStop), false)
		cancel()
		if err != nil {
			w.a.logs.event("%s: preStop hook of %s failed: %v", w.key, r.spec.Name, err)
		} else {
			w.a.logs.event("%s: preStop hook of %s done", w.key, r.spec.Name)
		}
	}
	turn := time.NewTimer(time.Until(deadline))
	defer turn.Stop()
wait:
	for _, ch := range prereqs {
		select {
		case <-ch:
		case <-turn.C:
			break wait
		case <-w.hurry:
			break wait
		}
	}
	if p.exited() {
		return
	}
	grace := max(time.Until(deadline), minGracePeriod)
	if w.hurried() {
		grace = w.a.cfg.StopTimeout
	}
	sig := r.stopSignal()
	w.a.logs.event("%s: sending %s to %s (grace %s)", w.key, signalName(sig), r.spec.Name, grace.Round(time.Millisecond))
	p.stop(sig, grace, w.hurry, w.a.cfg.StopTimeout, func() {
		w.a.logs.event("%s: %s did not exit in time: sending SIGKILL", w.key, r.spec.Name)
	})
}

// hurryContext ends at deadline or when the pod must hurry.
func (w *podWorker) hurryContext(deadline time.Time) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	go func() {
		select {
		case <-w.hurry:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}
