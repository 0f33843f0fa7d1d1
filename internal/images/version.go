package images

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// FallbackVersion is the version of a build from outside a git checkout (a
// source tarball, say) when nothing else names it.
const FallbackVersion = "v0.0.0-dev"

// tagPattern is what an image tag may hold (the distribution spec's rule);
// a version must be one so it can tag the images.
var tagPattern = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)

// releaseTag is a `git describe` answer that starts from a release tag.
var releaseTag = regexp.MustCompile(`^v[0-9]`)

// DetectVersion names the source tree in dir the way `git describe --tags
// --always --dirty` does, so that a build from release tag v1.2.0 is
// "v1.2.0" and three commits later "v1.2.0-3-gabcdef0". Without any
// release tag (a fresh clone, CI's shallow checkouts) it answers as if
// v0.0.0 tagged the first commit: "v0.0.0-<commits>-g<sha>[-dirty]", still a
// semver pre-release of v0.0.0 and still a valid image tag (no "+", which
// tags may not hold). Outside a git checkout it is FallbackVersion.
func DetectVersion(dir string) string {
	desc, err := git(dir, "describe", "--tags", "--always", "--dirty", "--match", "v[0-9]*", "--abbrev=7")
	if err != nil {
		return FallbackVersion
	}
	if releaseTag.MatchString(desc) {
		return desc
	}
	// No release tag: desc is "<sha>" or "<sha>-dirty".
	sha, dirty := strings.CutSuffix(desc, "-dirty")
	n, err := git(dir, "rev-list", "--count", "HEAD")
	if err != nil {
		n = "0"
	}
	v := fmt.Sprintf("v0.0.0-%s-g%s", n, sha)
	if dirty {
		v += "-dirty"
	}
	return v
}

// ValidateVersion says whether v can be both the binary's version and the
// images' tag.
func ValidateVersion(v string) error {
	if !tagPattern.MatchString(v) {
		return fmt.Errorf("version %q cannot tag an image: use letters, digits, '_', '.' and '-' (at most 128, not starting with '.' or '-')", v)
	}
	return nil
}

// DetectRevision is the full commit id of dir's HEAD, or "" outside git.
func DetectRevision(dir string) string {
	rev, err := git(dir, "rev-parse", "HEAD")
	if err != nil {
		return ""
	}
	return rev
}

// DetectCreated is the images' creation time: SOURCE_DATE_EPOCH when set
// (the reproducible-builds convention), else the HEAD commit's time, else
// the Unix epoch. It never reads the clock, so a rebuild of the same
// commit gives the same digests.
func DetectCreated(dir string) (time.Time, error) {
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		sec, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q: want seconds since the Unix epoch: %w", s, err)
		}
		return time.Unix(sec, 0).UTC(), nil
	}
	if s, err := git(dir, "log", "-1", "--format=%ct"); err == nil {
		if sec, err := strconv.ParseInt(s, 10, 64); err == nil {
			return time.Unix(sec, 0).UTC(), nil
		}
	}
	return time.Unix(0, 0).UTC(), nil
}

func git(dir string, args ...string) (string, error) {
	cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(string(out)), nil
}
