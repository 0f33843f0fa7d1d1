package proxy

import (
	"os"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"github.com/flint-dev/flint/internal/reload"
)

// TestGatewayTokenFileFollowsARotation: the sidecar accepts every line of
// -gateway-token-file and follows the file within reload.Interval, so a
// rotation (add the new token, swap, drop the old one) never refuses a
// gateway that has switched earlier or later than this sidecar.
func TestGatewayTokenFileFollowsARotation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const old, next = "old-gateway-token-0123456789", "new-gateway-token-0123456789"
		path := filepath.Join(t.TempDir(), "token")
		write := func(s string) {
			if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		write(old + "\n")
		tok, err := newGatewayToken(Config{GatewayTokenFile: path}, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, step := range []struct {
			file      string
			oldOK     bool
			nextOK    bool
			afterWait bool
		}{
			{old + "\n", true, false, true},
			{old + "\n" + next + "\n", true, false, false}, // not re-read yet
			{old + "\n" + next + "\n", true, true, true},
			{next + "\n" + old + "\n", true, true, true},
			{next + "\n", false, true, true},
			{"", false, true, true}, // emptied by mistake: the token in use stays
		} {
			write(step.file)
			if step.afterWait {
				time.Sleep(reload.Interval)
			}
			if tok.accepts(old) != step.oldOK || tok.accepts(next) != step.nextOK {
				t.Errorf("file %q: accepts old=%v new=%v, want %v %v", step.file, tok.accepts(old), tok.accepts(next), step.oldOK, step.nextOK)
			}
			if tok.accepts("") || tok.accepts("guess") {
				t.Errorf("file %q: accepts a request without the token", step.file)
			}
		}
	})
}
