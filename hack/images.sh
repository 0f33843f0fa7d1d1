#!/usr/bin/env bash
# Builds Flint's container images without Docker: the flint image, one image
# per example agent and a pause image, for linux/amd64 and linux/arm64, and
# writes them under bin/images/ (an OCI layout, docker-archive tarballs per
# image and platform, images.txt with every digest, helm-values.yaml).
#   hack/images.sh                        # build and write everything
#   hack/images.sh -push REGISTRY         # ... and push them to REGISTRY
#   hack/images.sh -platforms linux/amd64 -images flint,echo
#   hack/images.sh -h                     # every flag
# docs/install.md shows how to load the tarballs into kind, k3d or containerd.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=${GOTOOLCHAIN:-local}
exec go run -buildvcs=false ./hack/images "$@"
