package gateway

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"github.com/flint-dev/flint/internal/reload"
)

// TestAPIKeysFollowTheFile: keys added to and removed from -api-keys-file
// apply within reload.Interval, with no restart; a file emptied by mistake
// keeps the keys in use rather than locking every caller out.
func TestAPIKeysFollowTheFile(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "keys")
		write := func(s string) {
			if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		write("old-key\n")
		a, err := newAuthenticator(context.Background(), AuthConfig{APIKeysFile: path}, nil)
		if err != nil {
			t.Fatal(err)
		}
		check := func(when string, want map[string]bool) {
			t.Helper()
			for key, ok := range want {
				if a.isAPIKey(key) != ok {
					t.Errorf("%s: key %q accepted=%v, want %v", when, key, !ok, ok)
				}
			}
		}
		check("at start", map[string]bool{"old-key": true, "new-key": false})

		write("old-key\nnew-key\n")
		check("before the interval", map[string]bool{"old-key": true, "new-key": false})
		time.Sleep(reload.Interval)
		check("key added", map[string]bool{"old-key": true, "new-key": true})

		write("new-key\n")
		time.Sleep(reload.Interval)
		check("key removed", map[string]bool{"old-key": false, "new-key": true})

		write("")
		time.Sleep(reload.Interval)
		check("file emptied", map[string]bool{"new-key": true})
	})
}
