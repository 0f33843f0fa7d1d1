#!/usr/bin/env bash
# Runs every check CI runs: vet, the unit, Kubernetes (real kube-apiserver)
# and end-to-end tests with the race detector, the real-node suite, and a
# short fuzzing pass over each fuzz target.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=local
FUZZTIME=${FUZZTIME:-10s} # per fuzz target, a duration as timeout(1) takes it (10s, 2m)

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
# The relay's, the sidecar's and the gateway's tests once more with the
# relay on event loops (h1relay.Server.Loops, their -event-loops).
go test -race -count=1 ./internal/h1relay -args -loops=2
go test -race -count=1 ./internal/proxy -args -event-loops=2
go test -race -count=1 ./internal/gateway -args -event-loops=2

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
# The fuzzing time is ended with SIGINT rather than -fuzztime. Go 1.26's
# coordinator can fail a target that found nothing when a -fuzztime
# deadline fires: it compares the deadline context's error with its child's
# before the child is cancelled and reports a bare "context deadline
# exceeded" (golang/go#75804, fixed in Go 1.27; it hit FuzzSidecarHeaders in
# two CI runs out of three on a loaded machine). An interrupt ends fuzzing
# the same way (workers stopped, results after it ignored) and is reported
# as a clean stop; a crash still fails with its input written to testdata.
# So the test binary is built as `go test -fuzz` builds it and run as it
# runs it (in the package's directory, with the same fuzz cache), and is
# sent SIGINT after FUZZTIME, SIGKILL two minutes later if it hangs.
# Back to `go test -fuzz -fuzztime` once the toolchain is Go 1.27.
fuzz_target() {
  local pkg=$1 target=$2 dir import rc=0
  shift 2 # the rest: the test binary's own flags
  dir=$(mktemp -d)
  import=$(go list -f '{{.ImportPath}}' "$pkg")
  go test -c -fuzz "^${target}\$" -o "$dir/fuzz.test" "$pkg"
  (cd "$pkg" && timeout --preserve-status -k 2m -s INT "$FUZZTIME" "$dir/fuzz.test" \
    -test.run='^$' -test.fuzz="^${target}\$" -test.paniconexit0 -test.timeout=10m \
    -test.fuzzcachedir="$(go env GOCACHE)/fuzz/$import" "$@") || rc=$?
  rm -rf "$dir"
  if [[ $rc != 0 ]]; then
    echo "FAIL	$import $target $* (exit $rc)"
    return 1
  fi
  echo "ok  	$import $target $*"
}

while read -r pkg target; do
  fuzz_target "$pkg" "$target"
done < <(grep -rl --include='*_test.go' '^func Fuzz' . | while read -r f; do
  for t in $(grep -o '^func Fuzz[A-Za-z0-9_]*' "$f" | sed 's/^func //'); do
    echo "./$(dirname "${f#./}") $t"
  done
done)
# The header fuzzers once more with the relays on event loops.
fuzz_target ./internal/proxy FuzzSidecarHeaders -event-loops=2
fuzz_target ./internal/gateway FuzzGatewayHeaders -event-loops=2
