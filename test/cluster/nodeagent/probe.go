package nodeagent

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// action is what a probe or a lifecycle hook does; one of the fields is set.
type action struct {
	exec  *corev1.ExecAction
	http  *corev1.HTTPGetAction
	tcp   *corev1.TCPSocketAction
	grpc  *corev1.GRPCAction
	sleep *corev1.SleepAction
}

func probeAction(p *corev1.Probe) action {
	return action{exec: p.Exec, http: p.HTTPGet, tcp: p.TCPSocket, grpc: p.GRPC}
}

func hookAction(h *corev1.LifecycleHandler) action {
	return action{exec: h.Exec, http: h.HTTPGet, tcp: h.TCPSocket, sleep: h.Sleep}
}

// probeClient is the kubelet's prober: no connection reuse (every probe is
// a fresh connection, so a dead listener is noticed), certificates not
// verified.
var probeClient = &http.Client{
	Transport: &http.Transport{
		DisableKeepAlives: true,
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // as the kubelet's prober
	},
}

// run performs a against container c of the pod, within ctx. For probes,
// an HTTP status outside 200-399 is a failure; hooks only fail when the
// request does (the kubelet ignores a hook's status code).
func (w *podWorker) runAction(ctx context.Context, c *corev1.Container, a action, isProbe bool) error {
	switch {
	case a.http != nil:
		return w.httpGet(ctx, c, a.http, isProbe)
	case a.tcp != nil:
		port, err := resolvePort(c, a.tcp.Port)
		if err != nil {
			return err
		}
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(w.host(a.tcp.Host), strconv.Itoa(port)))
		if err != nil {
			return err
		}
		return conn.Close()
	case a.exec != nil:
		return w.execIn(ctx, c, a.exec.Command)
	case a.sleep != nil:
		select {
		case <-time.After(time.Duration(a.sleep.Seconds) * time.Second):
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	case a.grpc != nil:
		return fmt.Errorf("grpc probes are not emulated")
	}
	return fmt.Errorf("no action set")
}

// host is where a probe or hook connects: its host field (with pod-local
// names rewritten) or the pod IP.
func (w *podWorker) host(h string) string {
	if h == "" {
		return w.ip
	}
	return rewriteAddrs(h, w.ip)
}

func (w *podWorker) httpGet(ctx context.Context, c *corev1.Container, g *corev1.HTTPGetAction, isProbe bool) error {
	port, err := resolvePort(c, g.Port)
	if err != nil {
		return err
	}
	scheme := "http"
	if g.Scheme == corev1.URISchemeHTTPS {
		scheme = "https"
	}
	path := g.Path
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	url := scheme + "://" + net.JoinHostPort(w.host(g.Host), strconv.Itoa(port)) + path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", "kube-probe/1.37")
	for _, h := range g.HTTPHeaders {
		if strings.EqualFold(h.Name, "Host") {
			req.Host = h.Value
			continue
		}
		req.Header.Add(h.Name, h.Value)
	}
	resp, err := probeClient.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 10<<10))
	resp.Body.Close()
	if isProbe && (resp.StatusCode < 200 || resp.StatusCode >= 400) {
		return fmt.Errorf("GET %s: HTTP %d", url, resp.StatusCode)
	}
	return nil
}

// resolvePort resolves a numeric or named port against c's ports.
func resolvePort(c *corev1.Container, p intstr.IntOrString) (int, error) {
	if p.Type == intstr.Int {
		return p.IntValue(), nil
	}
	if n, err := strconv.Atoi(p.StrVal); err == nil {
		return n, nil
	}
	for _, cp := range c.Ports {
		if cp.Name == p.StrVal {
			return int(cp.ContainerPort), nil
		}
	}
	return 0, fmt.Errorf("port %q is not among container %s's ports", p.StrVal, c.Name)
}

// execIn runs command "inside" container c: resolved and with the
// environment as the container's own processes, in a process group that is
// killed when ctx ends. Output is discarded, as the kubelet keeps it only
// for events.
func (w *podWorker) execIn(ctx context.Context, c *corev1.Container, command []string) error {
	if len(command) == 0 {
		return fmt.Errorf("exec: empty command")
	}
	l, err := w.buildLaunch(ctx, &corev1.Container{
		Name: c.Name, Image: c.Image, Command: command, Env: c.Env, EnvFrom: c.EnvFrom, WorkingDir: c.WorkingDir,
	})
	if err != nil {
		return err
	}
	p, err := startProcess(l, discardLogs, "", processHooks{})
	if err != nil {
		return fmt.Errorf("exec %q: %w", command[0], err)
	}
	select {
	case <-p.done:
	case <-ctx.Done():
		p.kill()
		<-p.done
		return fmt.Errorf("exec %q: %w", command[0], ctx.Err())
	}
	if p.exitCode != 0 {
		return fmt.Errorf("exec %q: exit code %d", command[0], p.exitCode)
	}
	return nil
}

var discardLogs = newLogStore("", io.Discard)
