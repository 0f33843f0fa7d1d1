package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"
)

// process is a flint process the suite started, in a process group of its
// own so that nothing it starts outlives it.
type process struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}

	mu      sync.Mutex
	waiters []lineWaiter
}

type lineWaiter struct {
	re *regexp.Regexp
	ch chan []string
}

// startProcess runs bin with args; its output goes to the recorder,
// prefixed with name.
func startProcess(name, bin string, args ...string) (*process, error) {
	p := &process{name: name, cmd: exec.Command(bin, args...), done: make(chan struct{})}
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	pr, pw := io.Pipe()
	p.cmd.Stdout, p.cmd.Stderr = pw, pw
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		lines := bufio.NewScanner(pr)
		lines.Buffer(make([]byte, 64<<10), 1<<20)
		for lines.Scan() {
			fmt.Fprintf(output, "%s | %s\n", name, lines.Text())
			p.match(lines.Text())
		}
	}()
	go func() {
		_ = p.cmd.Wait()
		pw.Close()
		close(p.done)
	}()
	return p, nil
}

func (p *process) match(line string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	kept := p.waiters[:0]
	for _, w := range p.waiters {
		if m := w.re.FindStringSubmatch(line); m != nil {
			w.ch <- m
			continue
		}
		kept = append(kept, w)
	}
	p.waiters = kept
}

// expect registers a wait for the next line matching pattern; call it
// before the line can appear, then receive from the channel.
func (p *process) expect(pattern string) chan []string {
	ch := make(chan []string, 1)
	p.mu.Lock()
	p.waiters = append(p.waiters, lineWaiter{re: regexp.MustCompile(pattern), ch: ch})
	p.mu.Unlock()
	return ch
}

// await waits for a line from expect, failing if the process exits or
// timeout passes first.
func (p *process) await(ch chan []string, what string, timeout time.Duration) ([]string, error) {
	select {
	case m := <-ch:
		return m, nil
	case <-p.done:
		return nil, fmt.Errorf("%s exited (%v) before %s:\n%s", p.name, p.cmd.ProcessState, what, output.about(p.name+" |"))
	case <-time.After(timeout):
		return nil, fmt.Errorf("%s: no %s within %s:\n%s", p.name, what, timeout, output.about(p.name+" |"))
	}
}

// stop sends SIGTERM, as a kubelet would, and SIGKILLs the group if the
// process is still there after 20s.
func (p *process) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		fmt.Fprintf(output, "%s | did not exit 20s after SIGTERM: killed\n", p.name)
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// gatewayProc is a running `flint gateway`.
type gatewayProc struct {
	*process
	url     string // http://127.0.0.1:PORT
	control string // host:port of its control port
	args    []string
}

const listenTimeout = 90 * time.Second

func startGateway(name, tokenFile string, extra ...string) (*gatewayProc, error) {
	args := append([]string{"gateway", "-kubeconfig", env.Kubeconfig, "-addr", "127.0.0.1:0",
		"-control-addr", "127.0.0.1:0", "-control-token-file", tokenFile, "-log-format=text"}, extra...)
	return launchGateway(name, args)
}

func launchGateway(name string, args []string) (*gatewayProc, error) {
	p, err := startProcess(name, bins.flint, args...)
	if err != nil {
		return nil, err
	}
	serving, control := p.expect(`listening on (http://\S+)`), p.expect(`control on http://(\S+)`)
	g := &gatewayProc{process: p, args: args}
	m, err := p.await(serving, "listening line", listenTimeout)
	if err == nil {
		g.url = m[1]
		m, err = p.await(control, "control line", listenTimeout)
	}
	if err != nil {
		p.stop()
		return nil, err
	}
	g.control = strings.TrimSuffix(m[1], "/")
	// The gateway listens before its informers sync (/readyz 503 until
	// then): wait, as a Service would, so tests start from a ready gateway.
	if err := g.awaitReady(listenTimeout); err != nil {
		p.stop()
		return nil, err
	}
	return g, nil
}

// awaitReady polls the gateway's /readyz until it answers 200.
func (g *gatewayProc) awaitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		resp, err := http.Get(g.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("gateway %s not ready within %s (last: %v)", g.url, timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
