#!/usr/bin/env bash
# Prints install.yaml, the single-file install of a release: `kubectl kustomize` of
# k8s/base with the image tag set to VERSION (the release workflow attaches it to the
# GitHub release). KUBECTL picks the kubectl (default: kubectl on PATH).
#   scripts/render-install.sh 0.2.0 > install.yaml
set -euo pipefail
version="${1:?usage: scripts/render-install.sh VERSION}"
if [[ ! "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+([-.+][0-9A-Za-z.-]+)?$ ]]; then
  echo "render-install: '$version' is not a release version (like 1.2.3)" >&2
  exit 2
fi
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# kustomize takes other kustomizations only by relative path: a throw-away overlay in build/.
mkdir -p "$repo/build"
overlay="$(mktemp -d "$repo/build/install.XXXXXX")"
trap 'rm -rf "$overlay"' EXIT
cat > "$overlay/kustomization.yaml" <<YAML
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ../../k8s/base
images:
  - name: ghcr.io/orchestrator-dev/orchestrator
    newTag: "$version"
YAML
echo "# orchestrator $version: kubectl apply --server-side -f install.yaml (docs/delivery.md)"
"${KUBECTL:-kubectl}" kustomize "$overlay"
