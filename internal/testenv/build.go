package testenv

import (
	"fmt"
	"os/exec"
)

// Build compiles the module's package pkg (e.g. "./cmd/flint") into out,
// for tests that run Flint's binaries as processes.
func Build(out, pkg string) error {
	root, err := ModuleRoot()
	if err != nil {
		return err
	}
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build %s: %v\n%s", pkg, err, b)
	}
	return nil
}
