package cli

import (
	"os"
	"path/filepath"
	"testing"
)

// TestInstallSelfCopiesTheBinary: what the stdio bridge's init container
// does on Kubernetes, into a fresh directory as an emptyDir is.
func TestInstallSelfCopiesTheBinary(t *testing.T) {
	dst := filepath.Join(t.TempDir(), "flint")
	if err := installSelf(dst); err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.Stat(exe)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.Stat(dst)
	if err != nil {
		t.Fatal(err)
	}
	if got.Size() != want.Size() || got.Mode().Perm() != 0o555 {
		t.Errorf("installed %d bytes mode %v, want %d bytes mode 0555", got.Size(), got.Mode().Perm(), want.Size())
	}
	entries, _ := os.ReadDir(filepath.Dir(dst))
	if len(entries) != 1 {
		t.Errorf("left behind %d entries, want only the binary", len(entries))
	}
	if err := installSelf(filepath.Join(t.TempDir(), "missing", "flint")); err == nil {
		t.Error("install into a missing directory succeeded")
	}
}
