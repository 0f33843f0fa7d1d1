#!/usr/bin/env bash
# Builds the control-plane binaries the envtest-based tests run against —
# kube-apiserver, kube-controller-manager and etcd — from the Go module proxy,
# because nothing else can be downloaded here (no GitHub, no container images).
#
# Output: bin/k8s/<K8S_VERSION>-linux-amd64/{kube-apiserver,kube-controller-manager,etcd}
# (the layout setup-envtest uses, so KUBEBUILDER_ASSETS can point at it).
#
# Building Kubernetes costs 7-11 minutes on 2 cores, so every binary is also
# kept in ${XDG_CACHE_HOME:-$HOME/.cache}/flint/k8s/<K8S_VERSION>-linux-amd64/:
# a fresh clone (CI) has an empty bin/ but the same $HOME, and copies from there.
# Present binaries are checked with --version, so bumping a version rebuilds.
#
# With --node it also builds what the real-node suite (test/realnode) runs:
# kubelet, kube-proxy and kube-scheduler from the same module, and a CoreDNS
# holding only the plugins a cluster needs (the default plugin set pulls in
# every cloud SDK). They land in the same directory, next to the envtest ones.
#
# Usage: hack/kube-binaries.sh            # build what is missing
#        hack/kube-binaries.sh --node     # ... plus the node binaries
#        FORCE=1 hack/kube-binaries.sh    # rebuild everything
# Prints the KUBEBUILDER_ASSETS directory on its last line.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=local GOFLAGS=-buildvcs=false

K8S_VERSION=${K8S_VERSION:-1.37.2}
# Kubernetes 1.37 pins etcd 3.7.x (build/dependencies.yaml); 1.35/1.36 want 3.6.x.
ETCD_VERSION=${ETCD_VERSION:-v3.7.3}
# The newest CoreDNS whose go.mod accepts Go 1.26 (GOTOOLCHAIN=local).
COREDNS_VERSION=${COREDNS_VERSION:-v1.15.0}
NODE=
for arg in "$@"; do
  case $arg in
  --node) NODE=1 ;;
  *) echo "usage: $0 [--node]" >&2; exit 2 ;;
  esac
done
STAGING_VERSION="v0.${K8S_VERSION#1.}" # k8s.io/api etc. are tagged v0.Y.Z for v1.Y.Z
PLATFORM="$(go env GOOS)-$(go env GOARCH)"
OUT="$PWD/bin/k8s/${K8S_VERSION}-${PLATFORM}"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/flint/k8s/${K8S_VERSION}-${PLATFORM}"
LDFLAGS_BASE="-s -w"

mkdir -p "$OUT" "$CACHE"
# Two sessions (or a test run and a developer) may start this at once; the
# second waits and then finds everything cached instead of building twice.
exec 9>"$CACHE/.lock"
if ! flock -n 9; then
  echo "kube-binaries: another build holds $CACHE/.lock; waiting" >&2
  flock 9
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/flint-kube-binaries.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

log() { printf 'kube-binaries: %s\n' "$*" >&2; }

# has_version BIN PATTERN: the binary exists, runs, and reports PATTERN.
has_version() {
  [[ -x "$1" ]] && "$1" --version 2>/dev/null | grep -qF -- "$2"
}

# install_bin SRC NAME: atomically place a built binary in bin/ and the cache.
install_bin() {
  local src=$1 name=$2
  cp "$src" "$OUT/.$name.tmp" && mv -f "$OUT/.$name.tmp" "$OUT/$name"
  cp "$src" "$CACHE/.$name.tmp" && mv -f "$CACHE/.$name.tmp" "$CACHE/$name"
}

# want NAME PATTERN: 0 when NAME must be built; reuses bin/ or the cache otherwise.
want() {
  local name=$1 pattern=$2
  if [[ -n "${FORCE:-}" ]]; then return 0; fi
  if has_version "$OUT/$name" "$pattern"; then
    log "$name: up to date in bin/"
    return 1
  fi
  if has_version "$CACHE/$name" "$pattern"; then
    cp "$CACHE/$name" "$OUT/.$name.tmp" && mv -f "$OUT/.$name.tmp" "$OUT/$name"
    log "$name: copied from $CACHE"
    return 1
  fi
  return 0
}

build_etcd() {
  want etcd "etcd Version: ${ETCD_VERSION#v}" || return 0
  local start=$SECONDS dir="$WORK/etcd"
  log "etcd ${ETCD_VERSION}: building (1-2 minutes with a cold Go build cache)"
  mkdir -p "$dir"
  # `go install go.etcd.io/etcd/server/v3@…` refuses modules with replace
  # directives, so a wrapper module requires it (dependency replaces are ignored).
  cat >"$dir/main.go" <<'EOF'
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
EOF
  (
    cd "$dir"
    {
      go mod init flint.local/etcd &&
        go get "go.etcd.io/etcd/server/v3@${ETCD_VERSION}" &&
        go mod tidy
    } >get.log 2>&1 || { cat get.log >&2; exit 1; }
    go build -trimpath -ldflags="$LDFLAGS_BASE" -o "$dir/etcd" .
  )
  install_bin "$dir/etcd" etcd
  log "etcd: built in $((SECONDS - start))s"
}

build_kube() {
  local need=()
  want kube-apiserver "Kubernetes v${K8S_VERSION}" && need+=(kube-apiserver)
  want kube-controller-manager "Kubernetes v${K8S_VERSION}" && need+=(kube-controller-manager)
  if [[ -n "$NODE" ]]; then
    # One `go build` with the control plane shares their compiled packages.
    local b
    for b in kubelet kube-proxy kube-scheduler; do
      want "$b" "Kubernetes v${K8S_VERSION}" && need+=("$b")
    done
  fi
  ((${#need[@]})) || return 0
  local start=$SECONDS dir="$WORK/kube"
  log "${need[*]} v${K8S_VERSION}: building (7-11 minutes with a cold Go build cache on 2 cores)"
  mkdir -p "$dir"
  # k8s.io/kubernetes requires its staging modules (k8s.io/api, ...) at
  # v0.0.0 and replaces them with ./staging paths; a module requiring it must
  # replace each with the published v0.Y.Z. The list is the replace block of
  # k8s.io/kubernetes' own go.mod, so a new Kubernetes version needs no edit here.
  local gomod
  gomod=$(go mod download -json "k8s.io/kubernetes@v${K8S_VERSION}" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')
  [[ -f "$gomod" ]] || { log "cannot find go.mod of k8s.io/kubernetes@v${K8S_VERSION}"; exit 1; }
  local staging
  staging=$(awk '/^replace \(/{inr=1; next} inr && /^\)/{inr=0} inr && $1 ~ /^k8s\.io\// && $3 ~ /^\.\/staging\// {print $1}' "$gomod")
  [[ -n "$staging" ]] || { log "no staging replaces found in $gomod"; exit 1; }
  {
    echo "module flint.local/kube-binaries"
    echo
    echo "go 1.26.0"
    echo
    echo "require k8s.io/kubernetes v${K8S_VERSION}"
    echo
    echo "replace ("
    for m in $staging; do echo "	$m => $m ${STAGING_VERSION}"; done
    echo ")"
  } >"$dir/go.mod"
  local pkgs=()
  for b in "${need[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$b"); done
  # Version stamps as Kubernetes' hack/lib/version.sh sets them: without them
  # /version says v0.0.0-master, which confuses clients and the cache check above.
  local minor=${K8S_VERSION#1.}; minor=${minor%%.*}
  local ldflags="$LDFLAGS_BASE"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $p.gitVersion=v${K8S_VERSION} -X $p.gitMajor=1 -X $p.gitMinor=${minor}"
    ldflags+=" -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
  done
  (
    cd "$dir"
    # Resolve the module graph for exactly the commands we build.
    go get "${pkgs[@]}" >get.log 2>&1 || { cat get.log >&2; exit 1; }
    # One `go build` for both commands compiles their shared packages once.
    mkdir -p out
    go build -trimpath -ldflags="$ldflags" -o out/ "${pkgs[@]}"
  )
  for b in "${need[@]}"; do install_bin "$dir/out/$b" "$b"; done
  log "${need[*]}: built in $((SECONDS - start))s"
}

build_coredns() {
  want coredns "CoreDNS-${COREDNS_VERSION#v}" || return 0
  local start=$SECONDS dir="$WORK/coredns"
  log "coredns ${COREDNS_VERSION}: building (about a minute with a warm Go build cache)"
  mkdir -p "$dir"
  # Plugins register themselves in init; the Corefile may only name these.
  cat >"$dir/main.go" <<'EOF'
package main

import (
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/ready"
)

func main() { coremain.Run() }
EOF
  (
    cd "$dir"
    {
      go mod init flint.local/coredns &&
        go get "github.com/coredns/coredns@${COREDNS_VERSION}" &&
        go mod tidy
    } >get.log 2>&1 || { cat get.log >&2; exit 1; }
    go build -trimpath -ldflags="$LDFLAGS_BASE" -o "$dir/coredns" .
  )
  install_bin "$dir/coredns" coredns
  log "coredns: built in $((SECONDS - start))s"
}

total=$SECONDS
build_etcd
if [[ -n "$NODE" ]]; then build_coredns; fi
build_kube
log "done in $((SECONDS - total))s"
echo "$OUT"
