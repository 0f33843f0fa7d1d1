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
#
# Go 1.26's fuzzing coordinator can fail a target that found nothing: when
# the -fuzztime deadline fires it compares the deadline context's error with
# its child's before the child is cancelled (golang/go#75804, fixed in Go
# 1.27), and reports a bare "context deadline exceeded". A run that failed
# only that way — that line right after the target's FAIL, no input written
# to testdata/fuzz, no other failure — is run again, at most twice; any
# other failure fails at once. Drop this when the toolchain is Go 1.27.
fuzz_target() {
  local pkg=$1 target=$2 out attempt
  out=$(mktemp)
  for attempt in 1 2 3; do
    if go test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" "$pkg" 2>&1 | tee "$out"; then
      rm -f "$out"
      return 0
    fi
    if ! coordinator_race "$target" "$out" || [[ $attempt == 3 ]]; then
      rm -f "$out"
      return 1
    fi
    echo "hack/test.sh: $target failed only with Go's fuzztime race (golang/go#75804); running it again" >&2
  done
}

# coordinator_race: whether a failed fuzzing run's output is golang/go#75804
# and nothing else.
coordinator_race() {
  local target=$1 out=$2
  grep -q -- "Failing input written to" "$out" && return 1
  [[ $(grep -c -- '^--- FAIL' "$out") == 1 ]] || return 1
  grep -A1 -- "^--- FAIL: ${target} " "$out" | tail -n 1 | grep -qx '    context deadline exceeded'
}

while read -r pkg target; do
  fuzz_target "$pkg" "$target"
done < <(grep -rl --include='*_test.go' '^func Fuzz' . | while read -r f; do
  for t in $(grep -o '^func Fuzz[A-Za-z0-9_]*' "$f" | sed 's/^func //'); do
    echo "./$(dirname "${f#./}") $t"
  done
done)
