// Package images builds Flint's container images without Docker: the flint
// image, one image per example agent and a pause image, each a static Go
// binary on a small base, for several platforms in one OCI image index.
// The builds are reproducible: zero mtimes, sorted layer entries, a fixed
// creation time and -trimpath binaries give the same digests every time
// from the same source. The images can then be written as an OCI layout,
// as docker-archive tarballs (for `ctr images import`, `kind load
// image-archive`, `k3d image import`) or pushed to a registry.
package images

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Defaults of Options.
const (
	// DefaultRegistry is where the chart and the manager look for the
	// images unless told otherwise: ghcr.io/flint-dev/flint:<version>.
	DefaultRegistry = "ghcr.io/flint-dev"
	DefaultSource   = "https://github.com/flint-dev/flint"
	// DefaultCACerts is the Debian/Ubuntu CA bundle (package ca-certificates).
	DefaultCACerts = "/etc/ssl/certs/ca-certificates.crt"
	// VersionVar is the variable -ldflags -X stamps with the version; `flint
	// version` prints it.
	VersionVar = "github.com/flint-dev/flint/internal/cli.Version"
)

// DefaultPlatforms are the platforms Build makes unless told otherwise.
func DefaultPlatforms() []v1.Platform {
	return []v1.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64"}}
}

// HostPlatform is the platform of the machine running this code, e.g. for
// the docker-archive tarball a local container runtime imports.
func HostPlatform() v1.Platform { return v1.Platform{OS: "linux", Architecture: hostArch} }

// Options say what Build makes. The zero value builds every image of the
// Catalog for DefaultPlatforms from the module around the working directory.
type Options struct {
	// Dir is the module root (holding go.mod); empty finds it upwards from
	// the working directory.
	Dir string
	// Registry prefixes every image's repository; empty is DefaultRegistry.
	Registry string
	// Version tags the images and is stamped into the binaries; empty is
	// DetectVersion(Dir).
	Version string
	// Revision is the source's commit (label org.opencontainers.image.revision);
	// empty is DetectRevision(Dir).
	Revision string
	// Source is the source's URL (label org.opencontainers.image.source).
	Source string
	// Created is every image's creation time; zero is DetectCreated(Dir).
	Created time.Time
	// Platforms to build; empty is DefaultPlatforms. Only linux.
	Platforms []v1.Platform
	// Images names the Catalog entries to build; empty is all of them.
	Images []string
	// CACerts is the PEM bundle the base layer carries; empty is DefaultCACerts.
	CACerts string
	// Go is the go command; empty is "go" on PATH. Builds share its build
	// cache (GOCACHE), so a rebuild only relinks.
	Go string
	// Log, when set, receives one line per step with its duration.
	Log io.Writer
}

// Result is what Build made.
type Result struct {
	Version, Revision string
	Created           time.Time
	Images            []Image
}

// Image is one built image: a multi-platform index and its per-platform
// images.
type Image struct {
	Spec
	// Ref is the image's name and tag (Registry/Repository:Version).
	Ref   name.Tag
	Index v1.ImageIndex
	// Digest is the index's digest: what a registry serves for Ref.
	Digest    v1.Hash
	Platforms []PlatformImage
}

// PlatformImage is an image for one platform.
type PlatformImage struct {
	Platform v1.Platform
	Image    v1.Image
	// Digest is the image manifest's digest.
	Digest v1.Hash
}

// Lookup returns the built image called name.
func (r *Result) Lookup(name string) (Image, bool) {
	for _, im := range r.Images {
		if im.Name == name {
			return im, true
		}
	}
	return Image{}, false
}

// ForPlatform returns the image for platform p.
func (im Image) ForPlatform(p v1.Platform) (v1.Image, error) {
	for _, pi := range im.Platforms {
		if pi.Platform.OS == p.OS && pi.Platform.Architecture == p.Architecture && pi.Platform.Variant == p.Variant {
			return pi.Image, nil
		}
	}
	return nil, fmt.Errorf("image %s was not built for %s", im.Ref, p)
}

// WithRegistry is im named under another registry prefix (for Push): the
// same content and digests, since an image's name is not part of it.
func (im Image) WithRegistry(registry string) (Image, error) {
	ref, err := name.NewTag(strings.TrimSuffix(registry, "/") + "/" + im.Repository + ":" + im.Ref.TagStr())
	if err != nil {
		return Image{}, fmt.Errorf("image name: %w", err)
	}
	im.Ref = ref
	return im, nil
}

// Build compiles the binaries (CGO_ENABLED=0, -trimpath, the version
// stamped in) for every platform and assembles the images.
func Build(ctx context.Context, o Options) (*Result, error) {
	if err := o.complete(); err != nil {
		return nil, err
	}
	specs, err := selectSpecs(o.Images)
	if err != nil {
		return nil, err
	}
	caCerts, err := os.ReadFile(o.CACerts)
	if err != nil {
		return nil, fmt.Errorf("CA certificates for the base layer: %w (install Debian's ca-certificates or set the bundle's path)", err)
	}
	base, err := newLayer(baseFiles(caCerts))
	if err != nil {
		return nil, fmt.Errorf("base layer: %w", err)
	}

	work, err := os.MkdirTemp("", "flint-images-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)

	res := &Result{Version: o.Version, Revision: o.Revision, Created: o.Created}
	perPlatform := make([][]v1.Image, len(specs)) // [spec][platform]
	for _, p := range o.Platforms {
		start := time.Now()
		out := filepath.Join(work, p.OS+"-"+p.Architecture)
		bins, err := goBuild(ctx, o, p, specs, out)
		if err != nil {
			return nil, err
		}
		o.logf("compiled %d binaries for %s in %v", len(specs), p, time.Since(start).Round(time.Millisecond))
		for i, s := range specs {
			img, err := assemble(o, s, p, base, bins[s.Name])
			if err != nil {
				return nil, fmt.Errorf("image %s for %s: %w", s.Name, p, err)
			}
			perPlatform[i] = append(perPlatform[i], img)
		}
	}
	for i, s := range specs {
		im, err := index(o, s, perPlatform[i])
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", s.Name, err)
		}
		res.Images = append(res.Images, im)
	}
	return res, nil
}

func (o *Options) complete() error {
	if o.Dir == "" {
		d, err := moduleRoot()
		if err != nil {
			return err
		}
		o.Dir = d
	}
	if o.Registry == "" {
		o.Registry = DefaultRegistry
	}
	o.Registry = strings.TrimSuffix(o.Registry, "/")
	if o.Version == "" {
		o.Version = DetectVersion(o.Dir)
	}
	if err := ValidateVersion(o.Version); err != nil {
		return err
	}
	if o.Revision == "" {
		o.Revision = DetectRevision(o.Dir)
	}
	if o.Source == "" {
		o.Source = DefaultSource
	}
	if o.Created.IsZero() {
		c, err := DetectCreated(o.Dir)
		if err != nil {
			return err
		}
		o.Created = c
	}
	if len(o.Platforms) == 0 {
		o.Platforms = DefaultPlatforms()
	}
	for _, p := range o.Platforms {
		if p.OS != "linux" {
			return fmt.Errorf("platform %s: only linux images can be built", p)
		}
	}
	if o.CACerts == "" {
		o.CACerts = DefaultCACerts
	}
	if o.Go == "" {
		o.Go = "go"
	}
	return nil
}

func (o *Options) logf(format string, args ...any) {
	if o.Log != nil {
		fmt.Fprintf(o.Log, format+"\n", args...)
	}
}

func selectSpecs(names []string) ([]Spec, error) {
	all := Catalog()
	if len(names) == 0 {
		return all, nil
	}
	var out []Spec
	for _, s := range all {
		if slices.Contains(names, s.Name) {
			out = append(out, s)
		}
	}
	for _, n := range names {
		if !slices.ContainsFunc(all, func(s Spec) bool { return s.Name == n }) {
			known := make([]string, len(all))
			for i, s := range all {
				known[i] = s.Name
			}
			return nil, fmt.Errorf("no image called %q: known images are %s", n, strings.Join(known, ", "))
		}
	}
	return out, nil
}

// assemble makes the image of spec s for platform p.
func assemble(o Options, s Spec, p v1.Platform, base v1.Layer, binary []byte) (v1.Image, error) {
	bin, err := newLayer(binaryFiles(s.Name, binary))
	if err != nil {
		return nil, err
	}
	entrypoint := BinDir + "/" + s.Name
	cfg := &v1.ConfigFile{
		Architecture: p.Architecture,
		OS:           p.OS,
		Variant:      p.Variant,
		Created:      v1.Time{Time: o.Created},
		Config: v1.Config{
			User:       s.User,
			Entrypoint: []string{entrypoint},
			Env:        []string{"PATH=" + BinDir + ":/usr/bin:/bin"},
			WorkingDir: "/",
			Labels:     o.labels(s),
		},
	}
	if len(s.Ports) > 0 {
		cfg.Config.ExposedPorts = map[string]struct{}{}
		for _, port := range s.Ports {
			cfg.Config.ExposedPorts[port] = struct{}{}
		}
	}
	img, err := mutate.ConfigFile(mutate.MediaType(empty.Image, types.OCIManifestSchema1), cfg)
	if err != nil {
		return nil, err
	}
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	var adds []mutate.Addendum
	if s.Base {
		adds = append(adds, mutate.Addendum{Layer: base, MediaType: types.OCILayer,
			History: v1.History{Created: v1.Time{Time: o.Created}, CreatedBy: "flint images: base (CA certificates, users, /tmp)"}})
	}
	adds = append(adds, mutate.Addendum{Layer: bin, MediaType: types.OCILayer,
		History: v1.History{Created: v1.Time{Time: o.Created}, CreatedBy: fmt.Sprintf("flint images: %s (go build %s)", entrypoint, s.Package)}})
	return mutate.Append(img, adds...)
}

func (o Options) labels(s Spec) map[string]string {
	l := map[string]string{
		"org.opencontainers.image.title":       s.Title,
		"org.opencontainers.image.description": s.Description,
		"org.opencontainers.image.version":     o.Version,
		"org.opencontainers.image.source":      o.Source,
		"org.opencontainers.image.url":         o.Source,
		"org.opencontainers.image.created":     o.Created.Format(time.RFC3339),
	}
	if o.Revision != "" {
		l["org.opencontainers.image.revision"] = o.Revision
	}
	return l
}

// index puts the per-platform images of s into one OCI image index.
func index(o Options, s Spec, imgs []v1.Image) (Image, error) {
	ref, err := name.NewTag(o.Registry + "/" + s.Repository + ":" + o.Version)
	if err != nil {
		return Image{}, fmt.Errorf("image name: %w", err)
	}
	im := Image{Spec: s, Ref: ref}
	var adds []mutate.IndexAddendum
	for i, img := range imgs {
		p := o.Platforms[i]
		d, err := img.Digest()
		if err != nil {
			return Image{}, err
		}
		im.Platforms = append(im.Platforms, PlatformImage{Platform: p, Image: img, Digest: d})
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &p}})
	}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	im.Index = mutate.AppendManifests(idx, adds...)
	if im.Digest, err = im.Index.Digest(); err != nil {
		return Image{}, err
	}
	return im, nil
}

// moduleRoot finds the directory of go.mod from the working directory up.
func moduleRoot() (string, error) {
	d, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		} else if !errors.Is(err, os.ErrNotExist) {
			return "", err
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", errors.New("no go.mod here or above: run from the Flint module or set Options.Dir")
		}
		d = parent
	}
}
