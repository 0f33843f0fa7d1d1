package images

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func gitIn(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-C", dir, "-c", "user.name=t", "-c", "user.email=t@example.com",
		"-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false"}, args...)...)
	cmd.Env = append(os.Environ(), "GIT_COMMITTER_DATE=2026-01-02T03:04:05Z", "GIT_AUTHOR_DATE=2026-01-02T03:04:05Z")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

func TestDetectVersion(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Fatal("git is needed to build versions from tags: install it")
	}
	t.Setenv("SOURCE_DATE_EPOCH", "")
	os.Unsetenv("SOURCE_DATE_EPOCH")
	dir := t.TempDir()
	if v := DetectVersion(dir); v != FallbackVersion {
		t.Errorf("outside git: %q, want %q", v, FallbackVersion)
	}
	if c, err := DetectCreated(dir); err != nil || !c.Equal(time.Unix(0, 0)) {
		t.Errorf("created outside git: %v %v, want the epoch", c, err)
	}

	gitIn(t, dir, "init", "-q")
	write := func(s string) {
		if err := os.WriteFile(dir+"/f", []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("1")
	gitIn(t, dir, "add", "f")
	gitIn(t, dir, "commit", "-q", "-m", "one")
	sha := gitIn(t, dir, "rev-parse", "--short=7", "HEAD")

	// No release tag: as if v0.0.0 tagged the first commit.
	if v, want := DetectVersion(dir), "v0.0.0-1-g"+sha; v != want {
		t.Errorf("untagged: %q, want %q", v, want)
	}
	write("2")
	if v, want := DetectVersion(dir), "v0.0.0-1-g"+sha+"-dirty"; v != want {
		t.Errorf("untagged dirty: %q, want %q", v, want)
	}
	gitIn(t, dir, "commit", "-q", "-am", "two")
	// A tag that is not a release does not count.
	gitIn(t, dir, "tag", "nightly")
	gitIn(t, dir, "tag", "v1.2.0")
	if v := DetectVersion(dir); v != "v1.2.0" {
		t.Errorf("at a release tag: %q, want v1.2.0", v)
	}
	write("3")
	gitIn(t, dir, "commit", "-q", "-am", "three")
	sha = gitIn(t, dir, "rev-parse", "--short=7", "HEAD")
	if v, want := DetectVersion(dir), "v1.2.0-1-g"+sha; v != want {
		t.Errorf("after a release tag: %q, want %q", v, want)
	}
	if r, want := DetectRevision(dir), gitIn(t, dir, "rev-parse", "HEAD"); r != want || len(r) != 40 {
		t.Errorf("revision %q, want %q", r, want)
	}
	if c, err := DetectCreated(dir); err != nil || !c.Equal(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)) {
		t.Errorf("created: %v %v, want the commit's time", c, err)
	}
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	if c, err := DetectCreated(dir); err != nil || c.Unix() != 1700000000 {
		t.Errorf("created with SOURCE_DATE_EPOCH: %v %v", c, err)
	}
	t.Setenv("SOURCE_DATE_EPOCH", "yesterday")
	if _, err := DetectCreated(dir); err == nil {
		t.Error("SOURCE_DATE_EPOCH=yesterday accepted")
	}
}

func TestValidateVersion(t *testing.T) {
	for _, v := range []string{"v1.2.0", "v0.0.0-12-gabcdef0-dirty", "v1.2.0-rc.1-3-g0123456", FallbackVersion} {
		if err := ValidateVersion(v); err != nil {
			t.Errorf("%q: %v", v, err)
		}
	}
	for _, v := range []string{"", "0.0.0-dev+abc", "-v1", ".v1", "v1/2", strings.Repeat("v", 129)} {
		if err := ValidateVersion(v); err == nil {
			t.Errorf("%q accepted as an image tag", v)
		}
	}
}
