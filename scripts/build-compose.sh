#!/usr/bin/env bash
# Builds Docker Compose v2 (the `docker compose` CLI; its Go module is github.com/docker/compose/v5)
# from the Go module proxy into a cache directory keyed by the pinned version, and prints the
# binary's path; a second run with the same pin returns at once. Debian bookworm ships only
# the Python docker-compose 1.29 (package docker-compose, end of life), not the Compose v2
# plugin, so tests/integration/test_compose.py checks docker-compose.yml with this one too.
# Separate from testenv/build.sh (its own key). About 4 minutes cold on 2 cores.
set -euo pipefail

COMPOSE_VERSION=v5.6.0
# Bump when the way the binary is built changes.
format=1
cache_root="${ORCHESTRATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/orchestrator}"
bin="$cache_root/docker-compose-$COMPOSE_VERSION-$format/bin"

if [[ ! -x "$bin/docker-compose" ]]; then
  echo "build-compose: building docker compose $COMPOSE_VERSION from github.com/docker/compose/v5/cmd" >&2
  mkdir -p "$bin"
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  # `go install module@version` refuses a module whose go.mod has exclude directives (this
  # one has), so the pinned version is required by a throw-away module and built from it;
  # `go get` checks every module against the checksum database.
  cd "$tmp"
  go mod init orchestrator.local/compose-cli >/dev/null 2>&1
  GOFLAGS=-modcacherw go get -tool "github.com/docker/compose/v5/cmd@$COMPOSE_VERSION" \
    >"$tmp/get.log" 2>&1 || { cat "$tmp/get.log" >&2; exit 1; }
  # compose stamps its version from this variable (compose's Makefile does the same).
  CGO_ENABLED=0 GOFLAGS="-buildvcs=false -modcacherw" go build -trimpath \
    -ldflags="-s -w -X github.com/docker/compose/v5/internal.Version=$COMPOSE_VERSION" \
    -o "$bin/docker-compose.partial" github.com/docker/compose/v5/cmd
  mv "$bin/docker-compose.partial" "$bin/docker-compose"
fi
echo "$bin/docker-compose"
