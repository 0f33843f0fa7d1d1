#!/usr/bin/env bash
# Fails when generated files (deepcopy, the CRD, the chart's copy of the CRD)
# are out of date with api/. Untracked output counts too: a new generated file
# that was never committed is as stale as a changed one.
set -euo pipefail
cd "$(dirname "$0")/.."
generated=(api/ deploy/crds/ deploy/helm/flint/templates/crd-agents.yaml)
hack/generate.sh
if [[ -n "$(git status --porcelain -- "${generated[@]}")" ]]; then
  echo "generated files are out of date; run hack/generate.sh and commit:" >&2
  git status --short -- "${generated[@]}" >&2
  git diff --stat -- "${generated[@]}" >&2
  exit 1
fi
