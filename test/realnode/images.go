package realnode

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/flint-dev/flint/internal/testenv"
)

// Images the harness builds and imports into the node's containerd. Pods
// refer to them with imagePullPolicy Never or IfNotPresent: nothing can be
// pulled from inside the namespace.
const (
	PauseImage      = "flint.test/pause:1"
	TestServerImage = "flint.test/testserver:1"
)

// Image is a docker-archive tarball to import into the node.
type Image struct {
	Ref, Tarball string
}

// buildImages builds the images the harness itself needs (the sandbox
// image and the test server) as docker-archive tarballs under dir.
// TODO(i14img): take the pause image from internal/images once it lands.
func buildImages(dir string) ([]Image, error) {
	var out []Image
	for _, b := range []struct{ ref, pkg, bin string }{
		{PauseImage, "./test/realnode/pause", "pause"},
		{TestServerImage, "./test/realnode/testserver", "testserver"},
	} {
		binPath := filepath.Join(dir, b.bin)
		if err := buildStatic(binPath, b.pkg); err != nil {
			return nil, err
		}
		tarPath := filepath.Join(dir, b.bin+".tar")
		if err := writeBinaryImage(tarPath, b.ref, binPath, "/"+b.bin); err != nil {
			return nil, fmt.Errorf("image %s: %w", b.ref, err)
		}
		out = append(out, Image{Ref: b.ref, Tarball: tarPath})
	}
	return out, nil
}

// buildStatic compiles a package of the module into a static binary.
func buildStatic(out, pkg string) error {
	root, err := testenv.ModuleRoot()
	if err != nil {
		return err
	}
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build %s: %v\n%s", pkg, err, b)
	}
	return nil
}

// writeBinaryImage writes an image holding one binary at path (its
// entrypoint), run as a non-root numeric user, with zero mtimes so the same
// binary gives the same digest.
func writeBinaryImage(tarPath, ref, binPath, path string) error {
	bin, err := os.ReadFile(binPath)
	if err != nil {
		return err
	}
	var layerTar bytes.Buffer
	tw := tar.NewWriter(&layerTar)
	if err := tw.WriteHeader(&tar.Header{Name: path[1:], Mode: 0o755, Size: int64(len(bin)), Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	if _, err := tw.Write(bin); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar.Bytes())), nil
	})
	if err != nil {
		return err
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	cf.Config = v1.Config{Entrypoint: []string{path}, User: "65532:65532"}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return err
	}
	tag, err := name.NewTag(ref)
	if err != nil {
		return err
	}
	return tarball.WriteToFile(tarPath, tag, img)
}
