#!/usr/bin/env bash
# Installs the pinned tools Flint's build needs into ./bin (git-ignored),
# from the Go module proxy only. Safe to re-run: present tools are kept.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p bin
CONTROLLER_GEN_VERSION=v0.23.0

if ! bin/controller-gen --version 2>/dev/null | grep -q "$CONTROLLER_GEN_VERSION"; then
  echo "installing controller-gen $CONTROLLER_GEN_VERSION into bin/"
  GOBIN="$PWD/bin" go install "sigs.k8s.io/controller-tools/cmd/controller-gen@$CONTROLLER_GEN_VERSION"
fi
