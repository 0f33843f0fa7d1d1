#!/usr/bin/env bash
# Fails when generated code (deepcopy) is out of date with api/.
set -euo pipefail
cd "$(dirname "$0")/.."
hack/tools.sh
go generate ./api/...
if ! git diff --quiet -- api/; then
  echo "generated code is out of date; run 'go generate ./api/...' and commit:" >&2
  git diff --stat -- api/ >&2
  exit 1
fi
