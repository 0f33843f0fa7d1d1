package testenv

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// KubernetesVersion is the version hack/kube-binaries.sh builds and the
// client libraries in go.mod match.
const KubernetesVersion = "1.37.2"

const modulePath = "github.com/flint-dev/flint"

// ModuleRoot returns the directory of Flint's go.mod, found by walking up
// from the working directory: `go test` runs each package in its own
// directory, so tests anywhere in the module find the same root.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find module root: %w", err)
	}
	for {
		if isFlintModule(filepath.Join(dir, "go.mod")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("find module root: no go.mod of %s above the working directory", modulePath)
		}
		dir = parent
	}
}

// isFlintModule reports whether path is a go.mod declaring Flint's module,
// so a nested module (e.g. a throwaway build module) is skipped.
func isFlintModule(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) == 2 && fields[0] == "module" {
			return strings.Trim(fields[1], `"`) == modulePath
		}
	}
	return false
}

// AssetsDir is where the control-plane binaries are looked up:
// $KUBEBUILDER_ASSETS when set (CI sets it), else the directory
// hack/kube-binaries.sh writes, under the module root.
func AssetsDir(root string) string {
	if d := os.Getenv("KUBEBUILDER_ASSETS"); d != "" {
		return d
	}
	return filepath.Join(root, "bin", "k8s", KubernetesVersion+"-"+runtime.GOOS+"-"+runtime.GOARCH)
}

// binaryPath resolves one binary the way envtest does: TEST_ASSET_<NAME>
// first, then the assets directory. It fails with the command that builds
// the binaries: a missing binary is a setup step, never a reason to skip.
func binaryPath(dir, name string) (string, error) {
	envName := "TEST_ASSET_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
	path := os.Getenv(envName)
	if path == "" {
		path = filepath.Join(dir, name)
	}
	st, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return "", fmt.Errorf("%s not found at %s: run hack/kube-binaries.sh to build the control-plane binaries "+
			"from the Go module proxy (once; later runs copy them from the cache), or set KUBEBUILDER_ASSETS", name, path)
	case err != nil:
		return "", fmt.Errorf("%s: %w", name, err)
	case st.IsDir() || st.Mode()&0o111 == 0:
		return "", fmt.Errorf("%s at %s is not an executable file: rerun hack/kube-binaries.sh", name, path)
	}
	return path, nil
}
