package reaper

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// script writes its first argument and $MARK into the file $OUT names.
const script = `printf '%s %s' "$1" "$MARK" > "$OUT"`

// helperEnv makes the test binary act as a test process that starts a
// reaper and then dies without stopping it.
const helperEnv = "FLINT_REAPER_HELPER_OUT"

func TestMain(m *testing.M) {
	if out := os.Getenv(helperEnv); out != "" {
		if _, err := Start("flint-reaper-test", script, []string{"OUT=" + out, "MARK=died"}, "arg"); err != nil {
			os.Exit(1)
		}
		os.Stdout.WriteString("READY\n")
		select {} // until SIGKILL
	}
	os.Exit(m.Run())
}

func TestReleaseRunsTheScriptAndStopDoesNot(t *testing.T) {
	dir := t.TempDir()
	released, stopped := filepath.Join(dir, "released"), filepath.Join(dir, "stopped")
	r, err := Start("flint-reaper-test", script, []string{"OUT=" + released, "MARK=released"}, "arg")
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Release(); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(released); err != nil || string(b) != "arg released" {
		t.Fatalf("after Release: %q, %v; want the script to have written %q", b, err, "arg released")
	}

	s, err := Start("flint-reaper-test", script, []string{"OUT=" + stopped, "MARK=stopped"}, "arg")
	if err != nil {
		t.Fatal(err)
	}
	s.Stop()
	(*Reaper)(nil).Stop()
	if _, err := os.Stat(stopped); !os.IsNotExist(err) {
		t.Fatalf("the script ran after Stop (%v)", err)
	}
}

// TestScriptRunsWhenTheTestProcessIsKilled kills a process holding a
// reaper with SIGKILL, as a `go test -timeout` panic or the OOM killer
// would, and expects the script to run anyway.
func TestScriptRunsWhenTheTestProcessIsKilled(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+out)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	if !sc.Scan() || sc.Text() != "READY" {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("helper did not start its reaper: %q", sc.Text())
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Fatalf("the script ran while its test process lived (%v)", err)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile(out)
		if err == nil && string(b) == "arg died" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("10s after the test process died: %q, %v; want %q", b, err, "arg died")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
