#!/usr/bin/env bash
# Runs every check CI runs: vet, the unit, Kubernetes (real kube-apiserver)
# and end-to-end tests with the race detector, and a short fuzzing pass over
# each fuzz target.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=local
FUZZTIME=${FUZZTIME:-10s}

# The control-plane binaries for the envtest-based tests (internal/testenv):
# built from the Go module proxy on first use, copied from the cache in
# ~/.cache/flint after that. The script prints their directory last.
KUBEBUILDER_ASSETS=$(hack/kube-binaries.sh | tail -n 1)
export KUBEBUILDER_ASSETS

go vet ./...
go test -race -count=1 -timeout 30m ./...

# Fuzz each target briefly; plain `go test` above already replays the seeds.
while read -r pkg target; do
  go test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" "$pkg"
done < <(grep -rl --include='*_test.go' '^func Fuzz' . | while read -r f; do
  for t in $(grep -o '^func Fuzz[A-Za-z0-9_]*' "$f" | sed 's/^func //'); do
    echo "./$(dirname "${f#./}") $t"
  done
done)
