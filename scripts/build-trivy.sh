#!/usr/bin/env bash
# Builds Trivy from its Go module (github.com/aquasecurity/trivy, through the Go module proxy)
# into a cache directory keyed by the pinned version, and prints the binary's path. A second
# run with the same pin reuses the cache and returns at once. Its own key, like
# scripts/build-helm.sh: bumping Trivy never rebuilds the control plane or helm.
#
# Only the config (misconfiguration) scan is used, with the checks compiled into the binary
# (trivy-checks, embedded): scripts/scan_manifests.py runs it offline.
set -euo pipefail

TRIVY_VERSION=v0.74.0
# Bump when the way the binary is built changes.
format=1
cache_root="${ORCHESTRATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/orchestrator}"
bin="$cache_root/trivy-$TRIVY_VERSION-$format/bin"

if [[ ! -x "$bin/trivy" ]]; then
  echo "build-trivy: building trivy $TRIVY_VERSION from github.com/aquasecurity/trivy/cmd/trivy" \
    "(a few minutes the first time; cached in $bin)" >&2
  mkdir -p "$bin"
  # Trivy stamps its version from this variable (its goreleaser config does the same).
  ldflags="-s -w -X github.com/aquasecurity/trivy/pkg/version/app.ver=${TRIVY_VERSION#v}"
  # go install with a version builds with the module's own go.mod/go.sum (checked against
  # the checksum database): nothing to pin here but the version.
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  # GOEXPERIMENT=jsonv2: Trivy uses encoding/json/v2 (its goreleaser.yml and magefile set it).
  GOBIN="$tmp" CGO_ENABLED=0 GOFLAGS=-buildvcs=false GOEXPERIMENT=jsonv2 \
    go install -trimpath -ldflags="$ldflags" "github.com/aquasecurity/trivy/cmd/trivy@$TRIVY_VERSION"
  mv "$tmp/trivy" "$bin/trivy.partial"
  mv "$bin/trivy.partial" "$bin/trivy"
fi
echo "$bin/trivy"
