#!/usr/bin/env bash
# Builds the Kubernetes control-plane binaries the tests and the local cluster need, from Go modules
# only (no release downloads), and caches them under bin/k8s/<version>/.
#
#   hack/k8s-binaries.sh [component ...]
#
# Components: kube-apiserver etcd kube-scheduler kube-controller-manager kubectl kwok kwokctl.
# Without arguments it builds what envtest needs (kube-apiserver, etcd). A binary already in the cache
# is not rebuilt. Versions can be overridden through the environment.
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-1.37.1}"            # k8s.io/kubernetes module version (v1.37.2's zip is refused)
STAGING_VERSION="${STAGING_VERSION:-0.37.1}"    # k8s.io/<staging> twins of K8S_VERSION
ETCD_VERSION="${ETCD_VERSION:-3.6.7}"
KWOK_VERSION="${KWOK_VERSION:-0.8.0}"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${K8S_BIN_DIR:-$root/bin/k8s/$K8S_VERSION}"
work="$root/bin/.build"
mkdir -p "$out" "$work"

log() { printf '[k8s-binaries] %s\n' "$*" >&2; }

# The scratch module that builds binaries of k8s.io/kubernetes: it requires the main module and replaces
# every staging module (which k8s.io/kubernetes points at ./staging/...) by its published twin.
kube_module() {
  local dir="$work/kubernetes-$K8S_VERSION"
  if [[ -f "$dir/.ready" ]]; then echo "$dir"; return; fi
  log "preparing scratch module for k8s.io/kubernetes v$K8S_VERSION"
  rm -rf "$dir"; mkdir -p "$dir"
  local gomod
  gomod="$(cd "$dir" && GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@v$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",/\1/p')"
  {
    echo "module nodeagentset.local/k8sbuild"
    echo
    echo "go $(go env GOVERSION | sed -E 's/^go([0-9]+\.[0-9]+).*/\1/')"
    echo
    echo "require k8s.io/kubernetes v$K8S_VERSION"
    echo
    echo "replace ("
    grep -E '^\s+k8s\.io/[^ ]+ => \./staging/' "$gomod" | awk -v v="v$STAGING_VERSION" '{print "\t" $1 " => " $1 " " v}'
    echo ")"
  } >"$dir/go.mod"
  cat >"$dir/tools.go" <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
  (cd "$dir" && GOFLAGS=-mod=mod go mod tidy -e >/dev/null 2>&1 || true)
  (cd "$dir" && GOFLAGS=-mod=mod go mod download)
  touch "$dir/.ready"
  echo "$dir"
}

# The version a binary of k8s.io/kubernetes reports: the module alone says v0.0.0-master (hack/lib/version.sh
# normally stamps it), and kwokctl picks each component's flags by the version it reports (at v0.0.0 it
# would pass long-removed ones such as --insecure-port), so stamp the real one.
kube_ldflags() {
  local minor="${K8S_VERSION#*.}"; minor="${minor%%.*}"
  local x
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    x+=" -X $pkg.gitVersion=v$K8S_VERSION -X $pkg.gitMajor=${K8S_VERSION%%.*} -X $pkg.gitMinor=$minor"
    x+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  printf '%s\n' "-s -w$x"
}

# kube_version_ok NAME: the cached binary exists and reports v$K8S_VERSION (a binary built without the
# version stamp is relinked, which the Go build cache makes cheap).
kube_version_ok() {
  local bin="$out/$1" v
  [[ -x "$bin" ]] || return 1
  if [[ "$1" == kubectl ]]; then v="$("$bin" version --client 2>/dev/null || true)"
  else v="$("$bin" --version 2>/dev/null || true)"; fi
  [[ "$v" == *"v$K8S_VERSION"* ]]
}

build_kube() {
  local name="$1"
  kube_version_ok "$name" && return
  local dir; dir="$(kube_module)"
  log "building $name (k8s.io/kubernetes v$K8S_VERSION)"
  (cd "$dir" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags="$(kube_ldflags)" -o "$out/$name.tmp" "k8s.io/kubernetes/cmd/$name")
  mv "$out/$name.tmp" "$out/$name"
}

build_etcd() {
  [[ -x "$out/etcd" ]] && return
  local dir="$work/etcd-$ETCD_VERSION"
  log "building etcd v$ETCD_VERSION"
  mkdir -p "$dir"
  if [[ ! -f "$dir/go.mod" ]]; then
    (cd "$dir" && go mod init nodeagentset.local/etcdbuild >/dev/null 2>&1)
    cat >"$dir/tools.go" <<'GO'
//go:build tools

package tools

import _ "go.etcd.io/etcd/server/v3"
GO
    (cd "$dir" && GOFLAGS=-mod=mod go get "go.etcd.io/etcd/server/v3@v$ETCD_VERSION" >/dev/null && GOFLAGS=-mod=mod go mod tidy >/dev/null)
  fi
  (cd "$dir" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags='-s -w' -o "$out/etcd.tmp" go.etcd.io/etcd/server/v3)
  mv "$out/etcd.tmp" "$out/etcd"
}

build_kwok() {
  local name="$1"
  [[ -x "$out/$name" ]] && return
  log "building $name v$KWOK_VERSION"
  GOBIN="$work/gobin-kwok" CGO_ENABLED=0 go install -trimpath -ldflags='-s -w' "sigs.k8s.io/kwok/cmd/$name@v$KWOK_VERSION"
  mv "$work/gobin-kwok/$name" "$out/$name"
}

components=("$@")
[[ ${#components[@]} -gt 0 ]] || components=(kube-apiserver etcd)
for c in "${components[@]}"; do
  case "$c" in
    kube-apiserver|kube-scheduler|kube-controller-manager|kubectl) build_kube "$c" ;;
    etcd) build_etcd ;;
    kwok|kwokctl) build_kwok "$c" ;;
    *) log "unknown component $c"; exit 2 ;;
  esac
done
log "binaries in $out: $(cd "$out" && ls | tr '\n' ' ')"
