#!/usr/bin/env bash
# Runs every check CI runs: vet, the unit, Kubernetes (real kube-apiserver)
# and end-to-end tests with the race detector, the real-node suite, and a
# short fuzzing pass over each fuzz target.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=local
FUZZTIME=${FUZZTIME:-10s}

# The control-plane binaries for the envtest-based tests (internal/testenv):
# built from the Go module proxy on first use, copied from the cache in
# ~/.cache/flint after that. The script prints their directory last.
# CI (FLINT_REQUIRE_REALNODE=1) also builds the real-node suite's binaries
# here, so their first build does not count against that suite's timeout.
node_flag=()
if [[ "${FLINT_REQUIRE_REALNODE:-}" == 1 && "${FLINT_REALNODE:-1}" != 0 ]]; then node_flag=(--node); fi
KUBEBUILDER_ASSETS=$(hack/kube-binaries.sh "${node_flag[@]}" | tail -n 1)
export KUBEBUILDER_ASSETS

go vet ./...
# Everything but the real-node suite, with the race detector.
go test -race -count=1 -timeout 30m $(go list ./... | grep -v '/test/realnode$')

# The real-node suite (test/realnode): a real kubelet, containerd, CNI and
# kube-proxy in a namespace of its own. Process orchestration, so no -race;
# its own invocation, so its one node is not started under the race run.
# It builds kubelet, kube-proxy, kube-scheduler and CoreDNS on first use
# (hack/kube-binaries.sh --node); without root or the Debian packages it
# skips, unless FLINT_REQUIRE_REALNODE=1 (CI). FLINT_REALNODE=0 leaves it out.
if [[ "${FLINT_REALNODE:-1}" != 0 ]]; then
  go test -count=1 -timeout 30m ./test/realnode
fi

# Fuzz each target briefly; plain `go test` above already replays the seeds.
while read -r pkg target; do
  go test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" "$pkg"
done < <(grep -rl --include='*_test.go' '^func Fuzz' . | while read -r f; do
  for t in $(grep -o '^func Fuzz[A-Za-z0-9_]*' "$f" | sed 's/^func //'); do
    echo "./$(dirname "${f#./}") $t"
  done
done)
