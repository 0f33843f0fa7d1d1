package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"image"
	"image/png"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestDashboardInBrowser runs `flint up` with three agents, puts load on
// one until the autoscaler scales it out, cold-starts another and leaves
// the third at zero, then opens /ui in headless Chromium. The page must
// have rendered every agent, its scale decisions and its charts (checked on
// the DOM after the page's JavaScript ran), and its screenshot must be a
// real picture. FLINT_SCREENSHOT_DIR keeps the screenshot for a person to
// look at. Without Chromium the test is skipped, unless
// FLINT_REQUIRE_BROWSER=1 (CI) makes that a failure.
func TestDashboardInBrowser(t *testing.T) {
	browser := findBrowser(t)
	file := writeAgents(t, echoAgent("echo", "  concurrency: 2\n  scaling: {maxReplicas: 4}")+"---\n"+
		echoAgent("summarizer", "")+"---\n"+echoAgent("idle", ""))
	base, _ := flintUp(t, file, "-autoscaler-tick", "500ms", "-autoscaler-scrape-timeout", "250ms")
	c := newClient(t)

	if res, body := get(t, c, base+"/v1/agents/default/summarizer/hello"); res.StatusCode != 200 {
		t.Fatalf("summarizer: %d %s", res.StatusCode, body)
	}
	ctx, stopLoad := context.WithCancel(context.Background())
	var load sync.WaitGroup
	defer func() { stopLoad(); load.Wait() }()
	for range 8 {
		load.Go(func() {
			for ctx.Err() == nil {
				if res, err := c.Get(base + "/v1/agents/default/echo/work?sleep=150ms"); err == nil {
					res.Body.Close()
				}
			}
		})
	}
	waitForScaleOut(t, c, base, 30*time.Second)
	time.Sleep(5 * time.Second) // more samples for the charts

	dom := runBrowser(t, browser, "--virtual-time-budget=4000", "--dump-dom", base+"/ui/")
	for _, want := range []string{`data-agent="default/echo"`, `data-agent="default/summarizer"`, `data-agent="default/idle"`,
		"scaled to zero", "Recent scale decisions", "<path", `id="login" class="login" hidden`} {
		if !strings.Contains(dom, want) {
			t.Errorf("rendered page lacks %q", want)
		}
	}
	if m := regexp.MustCompile(`data-rendered="(\d+)"`).FindStringSubmatch(dom); m == nil || m[1] == "0" {
		t.Errorf("the page's script never rendered state (data-rendered %v)", m)
	}
	if !regexp.MustCompile(`0 → 1|1 → [2-4]`).MatchString(dom) {
		t.Errorf("no scale-up decision on the page")
	}
	if t.Failed() {
		t.Logf("DOM:\n%s", dom)
	}

	shot := filepath.Join(t.TempDir(), "dashboard.png")
	if dir := os.Getenv("FLINT_SCREENSHOT_DIR"); dir != "" {
		shot = filepath.Join(dir, "dashboard.png")
	}
	runBrowser(t, browser, "--virtual-time-budget=4000", "--window-size=1280,800", "--hide-scrollbars", "--screenshot="+shot, base+"/ui/")
	checkScreenshot(t, shot)
}

// waitForScaleOut waits until echo has at least two ready replicas.
func waitForScaleOut(t *testing.T, c *http.Client, base string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var d struct {
			ReadyReplicas int `json:"readyReplicas"`
		}
		res, body := get(t, c, base+"/api/v1/agents/default/echo")
		if res.StatusCode == 200 && json.Unmarshal([]byte(body), &d) == nil && d.ReadyReplicas >= 2 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("echo did not scale out within %s: %s", timeout, body)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// findBrowser returns Chromium's path, or skips the test without it.
func findBrowser(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("FLINT_REQUIRE_BROWSER") == "1" {
		t.Fatal("no chromium on PATH, and FLINT_REQUIRE_BROWSER=1 (install it: apt-get install -y chromium)")
	}
	t.Skip("no chromium on PATH; install it (apt-get install -y chromium) to test the dashboard in a browser")
	return ""
}

// runBrowser runs headless Chromium once and returns its stdout. Its whole
// process group is killed afterwards, so no renderer or GPU process
// outlives the test.
func runBrowser(t *testing.T, browser string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
		"--user-data-dir=" + t.TempDir()}
	cmd := exec.CommandContext(ctx, browser, append(base, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", browser, args, err, stderr.String())
	}
	return stdout.String()
}

// checkScreenshot decodes the PNG and checks it is a real page: the window's
// size, many colours, and no single colour covering nearly all of it.
func checkScreenshot(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot is not a PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() != 1280 || b.Dy() != 800 {
		t.Fatalf("screenshot is %dx%d, want 1280x800", b.Dx(), b.Dy())
	}
	colours, top := colourStats(img)
	total := 1280 * 800
	if colours < 64 || top > total*95/100 {
		t.Fatalf("screenshot looks blank: %d colours, the commonest covers %d of %d pixels", colours, top, total)
	}
	t.Logf("screenshot %s: %d colours, commonest covers %.0f%%", path, colours, 100*float64(top)/float64(total))
}

func colourStats(img image.Image) (distinct, commonest int) {
	counts := map[[3]uint32]int{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			k := [3]uint32{r >> 8, g >> 8, bl >> 8}
			counts[k]++
			if counts[k] > commonest {
				commonest = counts[k]
			}
		}
	}
	return len(counts), commonest
}
