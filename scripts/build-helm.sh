#!/usr/bin/env bash
# Builds helm from its Go module (helm.sh/helm/v3, through the Go module proxy) into a cache
# directory keyed by the pinned version, and prints the binary's path. A second run with the
# same pin reuses the cache and returns at once. Separate from testenv/build.sh (its own key):
# bumping helm never rebuilds the control plane.
set -euo pipefail

HELM_VERSION=v3.22.0
# Bump when the way the binary is built changes.
format=1
cache_root="${ORCHESTRATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/orchestrator}"
bin="$cache_root/helm-$HELM_VERSION-$format/bin"

if [[ ! -x "$bin/helm" ]]; then
  echo "build-helm: building helm $HELM_VERSION from helm.sh/helm/v3/cmd/helm" >&2
  mkdir -p "$bin"
  # helm stamps its version from these variables (helm's Makefile does the same).
  ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
  ldflags+=" -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
  # go install with a version builds with the module's own go.mod/go.sum (checked against
  # the checksum database): nothing to pin here but the version.
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  GOBIN="$tmp" CGO_ENABLED=0 GOFLAGS=-buildvcs=false \
    go install -trimpath -ldflags="$ldflags" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  mv "$tmp/helm" "$bin/helm.partial"
  mv "$bin/helm.partial" "$bin/helm"
fi
echo "$bin/helm"
