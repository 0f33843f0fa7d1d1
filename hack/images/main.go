// Command images builds Flint's container images (the flint image, one per
// example agent, and a pause image) for linux/amd64 and linux/arm64 without
// Docker, writes them under bin/images/ as an OCI layout and docker-archive
// tarballs, and with -push REGISTRY pushes them. hack/images.sh runs it;
// docs/install.md explains loading the images into kind, k3d or containerd.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/flint-dev/flint/internal/images"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "images: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("images", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "bin/images", "directory to write the OCI layout, the docker archives, images.txt and helm-values.yaml to")
	registry := fs.String("registry", images.DefaultRegistry, "registry and path prefix of the images' names (REGISTRY/flint:VERSION, REGISTRY/examples/echo:VERSION, ...)")
	push := fs.String("push", "", "push the images (multi-platform indexes) to this registry prefix, e.g. registry.example.com/flint; names the images after it (overrides -registry)")
	version := fs.String("version", "", "the images' tag and the binaries' version (default: from git describe, see docs/install.md)")
	platforms := fs.String("platforms", "linux/amd64,linux/arm64", "comma-separated platforms")
	only := fs.String("images", "", "comma-separated subset of images to build (default all: "+names()+")")
	printVersion := fs.Bool("print-version", false, "print the version the images would get and exit")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: hack/images.sh [flags]\n\nBuilds Flint's container images without Docker.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return nil
		}
		return err
	}
	o := images.Options{Registry: *registry, Version: *version, Log: stderr}
	if *push != "" {
		o.Registry = *push
	}
	if *printVersion {
		v := o.Version
		if v == "" {
			v = images.DetectVersion(".")
		}
		fmt.Fprintln(stdout, v)
		return images.ValidateVersion(v)
	}
	for _, p := range strings.Split(*platforms, ",") {
		pl, err := v1.ParsePlatform(strings.TrimSpace(p))
		if err != nil {
			return fmt.Errorf("-platforms %q: %w", p, err)
		}
		o.Platforms = append(o.Platforms, *pl)
	}
	if *only != "" {
		o.Images = strings.Split(*only, ",")
	}

	start := time.Now()
	res, err := images.Build(ctx, o)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "built %d images of version %s in %v\n", len(res.Images), res.Version, time.Since(start).Round(time.Millisecond))
	t := time.Now()
	w, err := res.WriteAll(*out)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "wrote %s in %v\n", *out, time.Since(t).Round(time.Millisecond))

	fmt.Fprintf(stdout, "version %s (revision %s, created %s)\n", res.Version, orNone(res.Revision), res.Created.Format(time.RFC3339))
	for _, im := range res.Images {
		fmt.Fprintf(stdout, "%s@%s\n", im.Ref, im.Digest)
		for _, pi := range im.Platforms {
			fmt.Fprintf(stdout, "  %-12s %s\n", pi.Platform, pi.Digest)
		}
	}
	fmt.Fprintf(stdout, "OCI layout:      %s\n", w.Layout)
	fmt.Fprintf(stdout, "OCI archive:     %s (ctr -n k8s.io images import --platform linux/amd64 %s)\n", w.OCIArchive, w.OCIArchive)
	for _, a := range w.Archives {
		fmt.Fprintf(stdout, "docker archive:  %s\n", a)
	}
	fmt.Fprintf(stdout, "image list:      %s\n", w.Manifest)
	if w.Values != "" {
		fmt.Fprintf(stdout, "Helm values:     %s (helm install ... -f %s)\n", w.Values, w.Values)
	}
	if *push != "" {
		t := time.Now()
		if err := images.Push(ctx, res.Images); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "pushed %d images to %s in %v\n", len(res.Images), *push, time.Since(t).Round(time.Millisecond))
	}
	return nil
}

func names() string {
	var n []string
	for _, s := range images.Catalog() {
		n = append(n, s.Name)
	}
	return strings.Join(n, ",")
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
