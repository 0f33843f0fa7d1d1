package images

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// WriteLayout writes images as one OCI image layout in dir (replacing what
// was there), each index annotated with its name so that `ctr images
// import` and skopeo's oci: transport find it.
func WriteLayout(dir string, images []Image) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return fmt.Errorf("OCI layout %s: %w", dir, err)
	}
	for _, im := range images {
		err := p.AppendIndex(im.Index, layout.WithAnnotations(map[string]string{
			"org.opencontainers.image.ref.name": im.Ref.TagStr(),
			"io.containerd.image.name":          im.Ref.Name(),
		}))
		if err != nil {
			return fmt.Errorf("OCI layout %s: image %s: %w", dir, im.Ref, err)
		}
	}
	return nil
}

// WriteOCIArchive writes images as an OCI layout packed in one tar file at
// path: `ctr -n k8s.io images import --platform linux/amd64 FILE` imports
// every image under its name in one go and keeps the index digests (a
// docker archive's import gets a manifest digest containerd makes up).
func WriteOCIArchive(path string, images []Image) error {
	tmp, err := os.MkdirTemp(filepath.Dir(path), ".oci-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := WriteLayout(filepath.Join(tmp, "oci"), images); err != nil {
		return err
	}
	f, err := os.Create(path + ".tmp")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := tarDir(f, filepath.Join(tmp, "oci")); err != nil {
		f.Close()
		return fmt.Errorf("OCI archive %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// tarDir writes the files under dir to w, sorted, with zero mtimes.
func tarDir(w io.Writer, dir string) error {
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		h := &tar.Header{Name: filepath.ToSlash(rel), ModTime: epoch, Mode: 0o644, Typeflag: tar.TypeReg, Format: tar.FormatPAX}
		if d.IsDir() {
			h.Name += "/"
			h.Mode, h.Typeflag = 0o755, tar.TypeDir
			return tw.WriteHeader(h)
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		h.Size = info.Size()
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(tw, f)
		return err
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

// WriteDockerArchive writes the platform-p images of images, tagged with
// their Ref, into one docker-archive tarball at path: what `ctr -n k8s.io
// images import`, `kind load image-archive` and `k3d image import` take.
func WriteDockerArchive(path string, p v1.Platform, images ...Image) error {
	refs := map[name.Reference]v1.Image{}
	for _, im := range images {
		img, err := im.ForPlatform(p)
		if err != nil {
			return err
		}
		refs[im.Ref] = img
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := tarball.MultiRefWriteToFile(tmp, refs); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("docker archive %s: %w", path, err)
	}
	return os.Rename(tmp, path)
}

// ArchiveName is the file WriteAll gives image name's docker archive for p,
// e.g. "flint-linux-amd64.tar".
func ArchiveName(imageName string, p v1.Platform) string {
	s := imageName + "-" + p.OS + "-" + p.Architecture
	if p.Variant != "" {
		s += "-" + p.Variant
	}
	return s + ".tar"
}

// Push writes every image's index (with its per-platform images and
// layers) to its Ref's registry, with the credentials of the local docker
// config (~/.docker/config.json) unless opts say otherwise. Registries on
// localhost, 127.0.0.1 and private addresses are spoken to over plain HTTP.
func Push(ctx context.Context, images []Image, opts ...remote.Option) error {
	opts = append([]remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)}, opts...)
	for _, im := range images {
		if err := remote.WriteIndex(im.Ref, im.Index, opts...); err != nil {
			return fmt.Errorf("push %s: %w", im.Ref, err)
		}
	}
	return nil
}

// Written lists what WriteAll wrote.
type Written struct {
	Layout string // the OCI layout directory
	// OCIArchive is the same layout in one tar file (for `ctr images import`).
	OCIArchive string
	Archives   []string // docker-archive tarballs, one per image and platform
	// Values is a Helm values file pointing the chart at the flint image.
	Values string
	// Manifest lists every image's reference and digests, one per line.
	Manifest string
}

// WriteAll writes r under dir: the OCI layout in dir/oci and packed in
// dir/oci.tar, a docker archive
// per image and platform (ArchiveName), dir/helm-values.yaml (image.repository
// and image.tag of the flint image, for `helm install -f`) and dir/images.txt
// (each image's reference, index digest and per-platform digests).
func (r *Result) WriteAll(dir string) (Written, error) {
	w := Written{Layout: filepath.Join(dir, "oci")}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return w, err
	}
	if err := WriteLayout(w.Layout, r.Images); err != nil {
		return w, err
	}
	w.OCIArchive = filepath.Join(dir, "oci.tar")
	if err := WriteOCIArchive(w.OCIArchive, r.Images); err != nil {
		return w, err
	}
	var list strings.Builder
	for _, im := range r.Images {
		fmt.Fprintf(&list, "%s@%s\n", im.Ref, im.Digest)
		for _, pi := range im.Platforms {
			path := filepath.Join(dir, ArchiveName(im.Name, pi.Platform))
			if err := WriteDockerArchive(path, pi.Platform, im); err != nil {
				return w, err
			}
			w.Archives = append(w.Archives, path)
			fmt.Fprintf(&list, "  %-12s %s %s\n", pi.Platform, pi.Digest, filepath.Base(path))
		}
	}
	w.Manifest = filepath.Join(dir, "images.txt")
	if err := os.WriteFile(w.Manifest, []byte(list.String()), 0o644); err != nil {
		return w, err
	}
	if flint, ok := r.Lookup("flint"); ok {
		w.Values = filepath.Join(dir, "helm-values.yaml")
		values := fmt.Sprintf("# Written by hack/images.sh: the flint image it built (%s).\n"+
			"image:\n  repository: %s\n  tag: %q\n", flint.Digest, flint.Ref.Context().Name(), flint.Ref.TagStr())
		if err := os.WriteFile(w.Values, []byte(values), 0o644); err != nil {
			return w, err
		}
	}
	return w, nil
}
