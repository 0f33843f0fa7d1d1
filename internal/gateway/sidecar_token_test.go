package gateway

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/flint-dev/flint/internal/reload"
)

// TestSidecarTokenFollowsTheFile: the gateway sends the first line of
// -sidecar-token-file, and switches within reload.Interval when a rotation
// swaps the lines.
func TestSidecarTokenFollowsTheFile(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const old, next = "old-gateway-token-0123456789", "new-gateway-token-0123456789"
		path := filepath.Join(t.TempDir(), "token")
		write := func(s string) {
			if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		write(old + "\n")
		tok, err := newSidecarToken(Config{SidecarTokenFile: path}, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, step := range []struct{ file, want string }{
			{old + "\n" + next + "\n", old}, // new one added: still sent the old
			{next + "\n" + old + "\n", next},
			{next + "\n", next},
			{"short\n", next}, // invalid: the token in use stays
		} {
			write(step.file)
			time.Sleep(reload.Interval)
			if got := tok.header(); !slices.Equal(got, []string{step.want}) {
				t.Errorf("file %q: sends %q, want %q", step.file, got, step.want)
			}
		}
	})
}

func TestSidecarTokenStaticOrNone(t *testing.T) {
	if tok, err := newSidecarToken(Config{}, nil); err != nil || tok.header() != nil {
		t.Errorf("no token: %q, %v", tok.header(), err)
	}
	if tok, _ := newSidecarToken(Config{SidecarToken: "fixed"}, nil); !slices.Equal(tok.header(), []string{"fixed"}) {
		t.Errorf("static token: %q", tok.header())
	}
	if _, err := newSidecarToken(Config{SidecarTokenFile: "/does/not/exist"}, nil); err == nil {
		t.Error("a missing -sidecar-token-file was accepted")
	}
}
