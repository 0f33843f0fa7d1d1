package nodeagent

import (
	"context"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// probe runs the probes of instance p until ctx ends (the instance exited):
// the startup probe first, then readiness and liveness, as the kubelet
// does. Liveness and startup stop once the pod is terminating; readiness
// goes on until the instance exits, as in the kubelet.
func (r *containerRunner) probe(ctx context.Context, p *process) {
	if r.kind == initKind {
		return // regular init containers have no probes
	}
	if sp := r.spec.StartupProbe; sp != nil {
		// Either settled outcome ends the startup probe.
		if !r.probeLoop(ctx, sp, "startup", func(bool) bool { return false }) {
			if ctx.Err() == nil {
				r.killUnhealthy(p, sp, "startup")
			}
			return
		}
	}
	r.setStarted()
	var wg sync.WaitGroup
	if rp := r.spec.ReadinessProbe; rp != nil {
		wg.Go(func() {
			r.probeLoop(ctx, rp, "readiness", func(ok bool) bool { r.setReady(ok); return true })
		})
	}
	if lp := r.spec.LivenessProbe; lp != nil {
		wg.Go(func() {
			lctx, cancel := context.WithCancel(ctx)
			defer cancel()
			go func() {
				select {
				case <-r.w.terminating:
					cancel()
				case <-lctx.Done():
				}
			}()
			if !r.probeLoop(lctx, lp, "liveness", func(ok bool) bool { return ok }) && lctx.Err() == nil {
				r.killUnhealthy(p, lp, "liveness")
			}
		})
	}
	wg.Wait()
}

// probeLoop probes every period after the initial delay and calls onResult
// each time the outcome settles (successThreshold successes or
// failureThreshold failures in a row); it stops when onResult returns
// false, and reports whether the last settled outcome was a success. A
// startup probe's onResult stops at the first settled success.
func (r *containerRunner) probeLoop(ctx context.Context, pr *corev1.Probe, kind string, onResult func(ok bool) bool) bool {
	period := time.Duration(max(pr.PeriodSeconds, 1)) * time.Second
	timeout := time.Duration(max(pr.TimeoutSeconds, 1)) * time.Second
	successes, failures := max(pr.SuccessThreshold, 1), max(pr.FailureThreshold, 1)
	if !sleepCtx(ctx, time.Duration(pr.InitialDelaySeconds)*time.Second) {
		return false
	}
	var okRun, failRun int32
	for {
		pctx, cancel := context.WithTimeout(ctx, timeout)
		err := r.w.runAction(pctx, r.spec, probeAction(pr), true)
		cancel()
		if ctx.Err() != nil {
			return false
		}
		if err == nil {
			okRun, failRun = okRun+1, 0
			if okRun >= successes && !onResult(true) {
				return true
			}
		} else {
			okRun, failRun = 0, failRun+1
			if failRun == 1 || failRun == failures {
				r.w.a.logs.event("%s: %s probe of %s failed (%d/%d): %v", r.w.key, kind, r.spec.Name, failRun, failures, err)
			}
			if failRun >= failures && !onResult(false) {
				return false
			}
		}
		if !sleepCtx(ctx, period) {
			return false
		}
	}
}

// killUnhealthy stops instance p after a failed liveness or startup probe:
// its stop signal, then SIGKILL after the probe's (or the pod's) grace
// period. The run loop then restarts it per restart policy.
func (r *containerRunner) killUnhealthy(p *process, pr *corev1.Probe, kind string) {
	grace := r.w.specGrace()
	if pr.TerminationGracePeriodSeconds != nil {
		grace = time.Duration(*pr.TerminationGracePeriodSeconds) * time.Second
	}
	r.w.a.logs.event("%s: container %s failed %s probe, will be restarted", r.w.key, r.spec.Name, kind)
	p.stop(r.stopSignal(), max(grace, minGracePeriod), r.w.hurry, r.w.a.cfg.StopTimeout, func() {
		r.w.a.logs.event("%s: %s did not exit in time: sending SIGKILL", r.w.key, r.spec.Name)
	})
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
