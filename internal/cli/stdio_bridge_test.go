package cli

import (
	"bytes"
	"strings"
	"testing"
)

func TestStdioBridgeNeedsACommand(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := Main([]string{"stdio-bridge", "-listen", "127.0.0.1:0"}, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "after --") {
		t.Errorf("no command: code %d, stderr %q", code, errOut.String())
	}
	errOut.Reset()
	if code := Main([]string{"stdio-bridge", "-grace-period", "3s", "--", "true"}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "-grace-period") {
		t.Errorf("budget over the grace period: code %d, stderr %q", code, errOut.String())
	}
}
