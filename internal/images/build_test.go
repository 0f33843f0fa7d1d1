package images

import (
	"archive/tar"
	"bytes"
	"context"
	"debug/elf"
	"io"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// testOptions builds from this module with a fixed version and time, so
// the tests neither depend on nor care about the checkout's git state.
func testOptions(t *testing.T, images []string, platforms []v1.Platform) Options {
	t.Helper()
	dir, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return Options{
		Dir: dir, Version: "v0.0.0-7-gtest123", Revision: "0123456789abcdef0123456789abcdef01234567",
		Created: time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC), Images: images, Platforms: platforms,
	}
}

type imageFile struct {
	data []byte
	hdr  *tar.Header
}

// filesFromImage returns the contents and headers of paths in img's
// flattened file system, in one pass (each pass decompresses every layer).
func filesFromImage(t *testing.T, img v1.Image, paths ...string) map[string]imageFile {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	found := map[string]imageFile{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return found
		}
		if err != nil {
			t.Fatal(err)
		}
		p := "/" + strings.TrimSuffix(h.Name, "/")
		if !slices.Contains(paths, p) {
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		found[p] = imageFile{b, h}
	}
}

// Two builds of the same source give the same digests: binaries, layers,
// configs, manifests and indexes. Each platform's image holds a static
// binary for that platform. The images go to a registry and come back with
// the same digest, and into a docker archive and an OCI layout.
func TestBuildIsReproducibleMultiPlatformAndPushes(t *testing.T) {
	ctx := context.Background()
	o := testOptions(t, []string{"echo", "pause"}, DefaultPlatforms())
	first, err := Build(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	second, err := Build(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if len(first.Images) != 2 || len(second.Images) != 2 {
		t.Fatalf("built %d and %d images, want 2", len(first.Images), len(second.Images))
	}
	for i, im := range first.Images {
		again := second.Images[i]
		t.Logf("%s@%s", im.Ref, im.Digest)
		if im.Digest != again.Digest {
			t.Errorf("%s: index digest %s, then %s", im.Name, im.Digest, again.Digest)
		}
		for j, pi := range im.Platforms {
			if pi.Digest != again.Platforms[j].Digest {
				t.Errorf("%s %s: digest %s, then %s", im.Name, pi.Platform, pi.Digest, again.Platforms[j].Digest)
			}
		}
		mf, err := im.Index.IndexManifest()
		if err != nil {
			t.Fatal(err)
		}
		if len(mf.Manifests) != 2 || mf.Manifests[0].Platform.Architecture != "amd64" || mf.Manifests[1].Platform.Architecture != "arm64" {
			t.Errorf("%s: index manifests %+v, want amd64 and arm64", im.Name, mf.Manifests)
		}
	}

	echo, _ := first.Lookup("echo")
	wantMachine := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}
	for _, pi := range echo.Platforms {
		cfg, err := pi.Image.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Architecture != pi.Platform.Architecture || cfg.OS != "linux" {
			t.Errorf("%s config says %s/%s", pi.Platform, cfg.OS, cfg.Architecture)
		}
		bin, ok := filesFromImage(t, pi.Image, "/usr/local/bin/echo")["/usr/local/bin/echo"]
		if !ok || bin.hdr.Mode != 0o755 || bin.hdr.Uid != 0 {
			t.Fatalf("%s: /usr/local/bin/echo %+v", pi.Platform, bin.hdr)
		}
		f, err := elf.NewFile(bytes.NewReader(bin.data))
		if err != nil {
			t.Fatalf("%s: the binary is not ELF: %v", pi.Platform, err)
		}
		if f.Machine != wantMachine[pi.Platform.Architecture] {
			t.Errorf("%s image holds a %v binary", pi.Platform, f.Machine)
		}
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
				t.Errorf("%s binary is dynamically linked (%v)", pi.Platform, p.Type)
			}
		}
	}
	pause, _ := first.Lookup("pause")
	if cfg, _ := pause.Platforms[0].Image.ConfigFile(); cfg.Config.User != "65535:65535" ||
		!slices.Equal(cfg.Config.Entrypoint, []string{"/usr/local/bin/pause"}) {
		t.Errorf("pause config %+v", cfg.Config)
	}
	if layers, _ := pause.Platforms[0].Image.Layers(); len(layers) != 1 {
		t.Errorf("pause has %d layers, want only its binary", len(layers))
	}

	t.Run("push", func(t *testing.T) {
		srv := httptest.NewServer(registry.New(registry.Logger(discardLogger())))
		defer srv.Close()
		reg := strings.TrimPrefix(srv.URL, "http://") // 127.0.0.1:port: plain HTTP
		var pushed []Image
		for _, im := range first.Images {
			im, err := im.WithRegistry(reg + "/team")
			if err != nil {
				t.Fatal(err)
			}
			pushed = append(pushed, im)
		}
		if err := Push(ctx, pushed); err != nil {
			t.Fatal(err)
		}
		for _, im := range pushed {
			if !strings.HasPrefix(im.Ref.String(), reg+"/team/") || im.Ref.TagStr() != o.Version {
				t.Errorf("pushed as %s", im.Ref)
			}
			got, err := remote.Index(im.Ref, remote.WithContext(ctx))
			if err != nil {
				t.Fatal(err)
			}
			if d, _ := got.Digest(); d != im.Digest {
				t.Errorf("registry serves %s as %s, pushed %s", im.Ref, d, im.Digest)
			}
			arm, err := remote.Image(im.Ref, remote.WithPlatform(v1.Platform{OS: "linux", Architecture: "arm64"}))
			if err != nil {
				t.Fatal(err)
			}
			if d, _ := arm.Digest(); d != im.Platforms[1].Digest {
				t.Errorf("%s for arm64: %s, want %s", im.Ref, d, im.Platforms[1].Digest)
			}
		}
	})

	t.Run("write", func(t *testing.T) {
		dir := t.TempDir()
		w, err := first.WriteAll(dir)
		if err != nil {
			t.Fatal(err)
		}
		if len(w.Archives) != 4 || w.Values != "" {
			t.Errorf("wrote %v and values %q; want 4 archives and no values without the flint image", w.Archives, w.Values)
		}
		arch := filepath.Join(dir, ArchiveName("echo", v1.Platform{OS: "linux", Architecture: "arm64"}))
		tag := echo.Ref
		img, err := tarball.ImageFromPath(arch, &tag)
		if err != nil {
			t.Fatal(err)
		}
		// The archive keeps the config and layers, so the image ID (the
		// config digest) a runtime shows after import is the built one.
		got, _ := img.ConfigName()
		want, _ := echo.Platforms[1].Image.ConfigName()
		if got != want {
			t.Errorf("docker archive holds config %s, want %s", got, want)
		}
		idx, err := layout.ImageIndexFromPath(w.Layout)
		if err != nil {
			t.Fatal(err)
		}
		mf, err := idx.IndexManifest()
		if err != nil {
			t.Fatal(err)
		}
		if len(mf.Manifests) != 2 || mf.Manifests[0].Digest != echo.Digest ||
			mf.Manifests[0].Annotations["io.containerd.image.name"] != echo.Ref.Name() ||
			mf.Manifests[0].Annotations["org.opencontainers.image.ref.name"] != o.Version {
			t.Errorf("OCI layout index %+v", mf.Manifests)
		}
		// The packed layout holds the same index.json and blobs.
		unpacked := t.TempDir()
		if out, err := exec.Command("tar", "-xf", w.OCIArchive, "-C", unpacked).CombinedOutput(); err != nil {
			t.Fatalf("tar -xf %s: %v\n%s", w.OCIArchive, err, out)
		}
		packed, err := layout.ImageIndexFromPath(unpacked)
		if err != nil {
			t.Fatal(err)
		}
		if d1, d2 := digestOf(t, packed), digestOf(t, idx); d1 != d2 {
			t.Errorf("oci.tar's index.json %s, the layout's %s", d1, d2)
		}
		cfgName, _ := echo.Platforms[0].Image.ConfigName()
		for _, h := range []v1.Hash{echo.Platforms[0].Digest, cfgName} {
			if _, err := layout.Path(unpacked).Bytes(h); err != nil {
				t.Errorf("oci.tar lacks the echo image's blob %s: %v", h, err)
			}
		}
		list, err := os.ReadFile(w.Manifest)
		if err != nil || !strings.Contains(string(list), echo.Ref.String()+"@"+echo.Digest.String()) {
			t.Errorf("images.txt %q (%v) lacks %s@%s", list, err, echo.Ref, echo.Digest)
		}
	})
}

// The flint image: the manager, gateway and sidecar binary at its stable
// path, run as the non-root user, with CA certificates, a writable /tmp and
// labels naming the version its binary prints.
func TestFlintImage(t *testing.T) {
	host := HostPlatform()
	o := testOptions(t, []string{"flint"}, []v1.Platform{host})
	res, err := Build(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	im, ok := res.Lookup("flint")
	if !ok || im.Ref.String() != "ghcr.io/flint-dev/flint:"+o.Version {
		t.Fatalf("flint image %v (%v)", im.Ref, ok)
	}
	img, err := im.ForPlatform(host)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.Config
	if c.User != "65532:65532" || !slices.Equal(c.Entrypoint, []string{FlintPath}) || len(c.Cmd) != 0 ||
		!slices.Contains(c.Env, "PATH=/usr/local/bin:/usr/bin:/bin") {
		t.Errorf("config: user %q entrypoint %q cmd %q env %q", c.User, c.Entrypoint, c.Cmd, c.Env)
	}
	for k, want := range map[string]string{
		"org.opencontainers.image.version":  o.Version,
		"org.opencontainers.image.source":   DefaultSource,
		"org.opencontainers.image.revision": o.Revision,
		"org.opencontainers.image.created":  "2026-12-04T00:00:00Z",
	} {
		if c.Labels[k] != want {
			t.Errorf("label %s = %q, want %q", k, c.Labels[k], want)
		}
	}
	if !cfg.Created.Time.Equal(o.Created) {
		t.Errorf("created %v, want %v", cfg.Created, o.Created)
	}

	files := filesFromImage(t, img, "/tmp", "/etc/ssl/certs/ca-certificates.crt", "/etc/passwd", FlintPath)
	if h := files["/tmp"].hdr; h == nil || h.Typeflag != tar.TypeDir || h.Mode != 0o1777 {
		t.Errorf("/tmp: %+v, want a directory with mode 1777", h)
	}
	if certs := files["/etc/ssl/certs/ca-certificates.crt"].data; !bytes.Contains(certs, []byte("-----BEGIN CERTIFICATE-----")) {
		t.Errorf("no CA certificates in the image (%d bytes)", len(certs))
	}
	if passwd := files["/etc/passwd"].data; !strings.Contains(string(passwd), "nonroot:x:65532:65532:") {
		t.Errorf("/etc/passwd lacks the non-root user:\n%s", passwd)
	}

	// The binary prints the version the image is tagged with.
	path := filepath.Join(t.TempDir(), "flint")
	if err := os.WriteFile(path, files[FlintPath].data, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, arg := range []string{"version", "--version"} {
		out, err := exec.Command(path, arg).CombinedOutput()
		if err != nil || string(out) != "flint "+o.Version+"\n" {
			t.Errorf("flint %s: %q (%v), want %q", arg, out, err, "flint "+o.Version+"\n")
		}
	}
}

func digestOf(t *testing.T, idx v1.ImageIndex) v1.Hash {
	t.Helper()
	d, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}
