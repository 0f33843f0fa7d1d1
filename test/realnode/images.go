package realnode

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/flint-dev/flint/internal/images"
	"github.com/flint-dev/flint/internal/testenv"
)

// TestServerImage is the harness's own test server (test/realnode/testserver).
// Pods refer to every image with imagePullPolicy Never or IfNotPresent:
// nothing can be pulled from inside the namespace.
const TestServerImage = "flint.test/testserver:1"

// FlintImages are the images of internal/images the harness builds for the
// host platform and imports: Flint itself, the example agents the tests run
// and the sandbox (pause) image containerd is configured with.
var FlintImages = []string{"flint", "echo", "mcp-go", "mcp-stdio", "pause"}

// Image is a docker-archive tarball to import into the node.
type Image struct {
	Ref, Tarball string
}

// buildImages builds, as `hack/images.sh -platforms <host> -images
// flint,echo,...` would, Flint's images and the test server's as
// docker-archive tarballs under dir.
func buildImages(ctx context.Context, dir string, log func(string, ...any)) (*images.Result, []Image, error) {
	root, err := testenv.ModuleRoot()
	if err != nil {
		return nil, nil, err
	}
	host := images.HostPlatform()
	res, err := images.Build(ctx, images.Options{
		Dir: root, Images: FlintImages, Platforms: []v1.Platform{host},
		Log: logWriter(log),
	})
	if err != nil {
		return nil, nil, fmt.Errorf("build images: %w", err)
	}
	flintTar := filepath.Join(dir, "flint-images.tar")
	if err := images.WriteDockerArchive(flintTar, host, res.Images...); err != nil {
		return nil, nil, err
	}
	out := []Image{{Ref: strings.Join(FlintImages, ","), Tarball: flintTar}}

	binPath := filepath.Join(dir, "testserver")
	if err := buildStatic(binPath, "./test/realnode/testserver"); err != nil {
		return nil, nil, err
	}
	tarPath := filepath.Join(dir, "testserver.tar")
	if err := writeBinaryImage(tarPath, TestServerImage, binPath, "/testserver"); err != nil {
		return nil, nil, fmt.Errorf("image %s: %w", TestServerImage, err)
	}
	return res, append(out, Image{Ref: TestServerImage, Tarball: tarPath}), nil
}

// ImageRef is the reference (registry/repository:version) of the built image
// called name, one of FlintImages; it panics on another name.
func (n *Node) ImageRef(name string) string {
	im, ok := n.built.Lookup(name)
	if !ok {
		panic("realnode: no image " + name + " was built")
	}
	return im.Ref.String()
}

// Version is the version the images were built and tagged with.
func (n *Node) Version() string { return n.built.Version }

type logFunc func(string, ...any)

func (f logFunc) Write(p []byte) (int, error) {
	f("images: %s", strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func logWriter(log func(string, ...any)) io.Writer { return logFunc(log) }

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
