package images

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

const hostArch = runtime.GOARCH

// goBuild compiles every spec's package for platform p in one `go build`
// (shared dependencies compile once) into out, and returns the binaries by
// name. The environment is pinned rather than inherited (GOFLAGS, the
// GOAMD64/GOARM64 levels, cgo off) so that a caller's settings cannot change
// the digests; GOCACHE is inherited, so a rebuild only relinks.
func goBuild(ctx context.Context, o Options, p v1.Platform, specs []Spec, out string) (map[string][]byte, error) {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, err
	}
	args := []string{"build", "-trimpath", "-buildvcs=false",
		"-ldflags", fmt.Sprintf("-s -w -X %s=%s", VersionVar, o.Version),
		"-o", out + string(filepath.Separator)}
	for _, s := range specs {
		args = append(args, s.Package)
	}
	cmd := exec.CommandContext(ctx, o.Go, args...)
	cmd.Dir = o.Dir
	cmd.Env = append(os.Environ(),
		"CGO_ENABLED=0", "GOOS="+p.OS, "GOARCH="+p.Architecture,
		"GOFLAGS=", "GOAMD64=v1", "GOARM64=v8.0", "GOEXPERIMENT=")
	var stderr bytes.Buffer
	cmd.Stdout = &stderr
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("go %s (GOOS=%s GOARCH=%s): %w\n%s", strings.Join(args, " "), p.OS, p.Architecture, err, stderr.String())
	}
	bins := map[string][]byte{}
	for _, s := range specs {
		b, err := os.ReadFile(filepath.Join(out, s.Name))
		if err != nil {
			return nil, fmt.Errorf("binary of %s: %w", s.Package, err)
		}
		bins[s.Name] = b
	}
	return bins, nil
}
