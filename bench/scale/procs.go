package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/runtime/schema"
)

var schemaDeploymentList = schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "DeploymentList"}

// proc is a Flint process the benchmark started, in its own process group.
type proc struct {
	name  string
	cmd   *exec.Cmd
	start time.Time
	done  chan struct{}
	pprof string // -pprof-addr, when profiles are taken

	mu    sync.Mutex
	lines []string
}

func startProc(name, bin string, args ...string) (*proc, error) {
	return startProcEnv(name, bin, nil, args...)
}

// startProcEnv starts bin with env added to the benchmark's environment.
func startProcEnv(name, bin string, env []string, args ...string) (*proc, error) {
	p := &proc{name: name, cmd: exec.Command(bin, args...), done: make(chan struct{})}
	if env != nil {
		p.cmd.Env = append(os.Environ(), env...)
	}
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	pr, pw := io.Pipe()
	p.cmd.Stdout, p.cmd.Stderr = pw, pw
	p.start = time.Now()
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		s := bufio.NewScanner(pr)
		s.Buffer(make([]byte, 64<<10), 1<<20)
		for s.Scan() {
			p.mu.Lock()
			p.lines = append(p.lines, s.Text())
			p.mu.Unlock()
		}
		_, _ = io.Copy(io.Discard, pr) // never block the child on a huge line
	}()
	go func() {
		_ = p.cmd.Wait()
		pw.Close()
		close(p.done)
	}()
	return p, nil
}

// find waits for a line matching re and returns its first group.
func (p *proc) find(re *regexp.Regexp, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	for {
		p.mu.Lock()
		for _, l := range p.lines {
			if m := re.FindStringSubmatch(l); m != nil {
				p.mu.Unlock()
				return m[1], nil
			}
		}
		p.mu.Unlock()
		select {
		case <-p.done:
			return "", fmt.Errorf("%s exited before %q:\n%s", p.name, re, p.tail(20))
		default:
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("%s: no %q within %s:\n%s", p.name, re, timeout, p.tail(20))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (p *proc) tail(n int) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.lines[max(0, len(p.lines)-n):], "\n")
}

// errorLines counts lines the process logged at level ERROR.
func (p *proc) errorLines() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, l := range p.lines {
		if strings.Contains(l, "level=ERROR") {
			out = append(out, l)
		}
	}
	return out
}

func (p *proc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// cpuTicks is user+system time of the process so far, in clock ticks
// (USER_HZ, 100 per second on Linux).
func (p *proc) cpuTicks() (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name, which is in parentheses and may hold spaces.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return utime + stime, nil
}

const ticksPerSecond = 100

// rssMiB is the process's resident set size now.
func (p *proc) rssMiB() (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	for l := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / 1024, nil
		}
	}
	return 0, fmt.Errorf("%s: no VmRSS", p.name)
}

// freeAddr returns a loopback address nothing listens on now.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// gateway is a running `flint gateway`.
type gateway struct {
	*proc
	url, control string
	ready        time.Duration // start → /readyz 200 and every agent listed
}

var (
	listenLine  = regexp.MustCompile(`listening on (http://\S+)`)
	controlLine = regexp.MustCompile(`control on (http://\S+)`)
)

func startGateway(name, bin, kubeconfig, tokenFile, sidecarTokenFile string, profiles bool) (*gateway, error) {
	args := []string{"gateway", "-kubeconfig", kubeconfig, "-addr", "127.0.0.1:0",
		"-control-addr", "127.0.0.1:0", "-control-token-file", tokenFile,
		"-sidecar-token-file", sidecarTokenFile, "-log-format=text"}
	pprof, args, err := withPprof(profiles, args)
	if err != nil {
		return nil, err
	}
	p, err := startProc(name, bin, args...)
	if err != nil {
		return nil, err
	}
	p.pprof = pprof
	return &gateway{proc: p}, nil
}

// withPprof adds -pprof-addr on a free address to args when on.
func withPprof(on bool, args []string) (string, []string, error) {
	if !on {
		return "", args, nil
	}
	addr, err := freeAddr()
	if err != nil {
		return "", nil, err
	}
	return addr, append(args, "-pprof-addr", addr), nil
}

// saveHeap writes the process's heap profile (after a collection) to
// dir/file, when it serves profiles.
func (p *proc) saveHeap(dir, file string) error {
	if p.pprof == "" {
		return nil
	}
	resp, err := http.Get("http://" + p.pprof + "/debug/pprof/heap?gc=1")
	if err != nil {
		return fmt.Errorf("heap profile of %s: %w", p.name, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("heap profile of %s: %w", p.name, err)
	}
	return os.WriteFile(filepath.Join(dir, file), b, 0o644)
}

// awaitReady waits for the gateway to listen, answer /readyz with 200 and
// list every one of the agents; ready is measured from process start.
func (g *gateway) awaitReady(agents int, timeout time.Duration) error {
	var err error
	if g.url, err = g.find(listenLine, timeout); err != nil {
		return err
	}
	if g.control, err = g.find(controlLine, timeout); err != nil {
		return err
	}
	deadline := g.start.Add(timeout)
	for time.Now().Before(deadline) {
		if ok, _ := g.readyAndListing(agents); ok {
			g.ready = time.Since(g.start)
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready with %d agents within %s:\n%s", g.name, agents, timeout, g.tail(20))
}

func (g *gateway) readyAndListing(agents int) (bool, error) {
	resp, err := http.Get(g.url + "/readyz")
	if err != nil {
		return false, err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false, nil
	}
	resp, err = http.Get(g.url + "/v1/agents")
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	var list []json.RawMessage
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		return false, err
	}
	return len(list) >= agents, nil
}

// endpoints returns the addresses the gateway routes the agent to now.
func (g *gateway) endpoints(client *http.Client, k agentKey) ([]string, error) {
	resp, err := client.Get(g.url + "/api/v1/agents/" + k.ns + "/" + k.name)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("describe %s/%s: %s", k.ns, k.name, resp.Status)
	}
	var d struct {
		Endpoints []struct {
			Addr string `json:"addr"`
		} `json:"endpoints"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&d); err != nil {
		return nil, err
	}
	out := make([]string, len(d.Endpoints))
	for i, e := range d.Endpoints {
		out[i] = e.Addr
	}
	return out, nil
}
