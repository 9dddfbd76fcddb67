#!/usr/bin/env bash
# Builds the control-plane binaries (etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler, kubectl, kwok and kwok-stages) from the Go modules pinned in testenv/go/ into a cache
# directory keyed by the pinned versions, and prints that directory. A second run with the
# same pins reuses the cache and returns at once.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache_root="${ORCHESTRATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/orchestrator}"
# The cache key: the pinned modules, our own Go source, and this format number (bump it when
# the way binaries are built changes).
format=1
pins="$( (echo "$format"; cat "$here"/go/*/go.mod "$here"/go/*/go.sum "$here"/go/kwok/kwok-stages/*.go) \
  | sha256sum | cut -c1-12)"
bin="$cache_root/testenv-$pins/bin"

build() {  # build <module dir> <package> <binary name>
  local dir="$1" pkg="$2" name="$3"
  if [[ -x "$bin/$name" ]]; then return; fi
  echo "testenv: building $name from $pkg" >&2
  local version ldflags="-s -w"
  if [[ "$dir" == kube ]]; then  # stamp the version the Kubernetes binaries report
    version="$(awk '$1 == "k8s.io/kubernetes" {print $2}' "$here/go/kube/go.mod")"
    local v=k8s.io/component-base/version
    ldflags+=" -X $v.gitVersion=$version -X $v.gitMajor=$(cut -d. -f1 <<<"${version#v}")"
    ldflags+=" -X $v.gitMinor=$(cut -d. -f2 <<<"$version") -X $v.gitTreeState=clean"
  fi
  (cd "$here/go/$dir" && CGO_ENABLED=0 go build -trimpath -ldflags="$ldflags" \
      -o "$bin/$name.partial" "$pkg")
  mv "$bin/$name.partial" "$bin/$name"
}

mkdir -p "$bin"
build kube go.etcd.io/etcd/server/v3 etcd
build kube k8s.io/kubernetes/cmd/kube-apiserver kube-apiserver
build kube k8s.io/kubernetes/cmd/kube-controller-manager kube-controller-manager
build kube k8s.io/kubernetes/cmd/kube-scheduler kube-scheduler
build kube k8s.io/kubernetes/cmd/kubectl kubectl
build kwok sigs.k8s.io/kwok/cmd/kwok kwok
build kwok ./kwok-stages kwok-stages
echo "$bin"
