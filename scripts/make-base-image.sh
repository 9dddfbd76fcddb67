#!/usr/bin/env bash
# Makes the Python base image for an offline `docker build` with no registry:
# a Debian bookworm rootfs with Python 3.11 (debootstrap --variant=minbase from the Debian
# mirror this machine's apt uses), loaded with `docker import` as orchestrator-base:bookworm-py311.
#
#   scripts/make-base-image.sh [TAG]          (default TAG: orchestrator-base:bookworm-py311)
#
# The Docker Engine is the one DOCKER_HOST points at (the default socket when unset); DOCKER
# names the docker CLI (default: `docker`). Run as root (debootstrap). The rootfs tarball is
# cached in ~/.cache/orchestrator/base-image/ ($ORCHESTRATOR_CACHE/base-image or
# $XDG_CACHE_HOME/orchestrator/base-image when set), keyed by suite, variant and package
# list, and the image carries the key as a label: a second run only checks (or re-imports
# the tarball into a new engine) and takes seconds.
#
# The Dockerfile's default base stays python:3.11-slim-bookworm; this one replaces it with
#   docker build --build-arg PYTHON_IMAGE=orchestrator-base:bookworm-py311 ...
# Both have `python3` (3.11) on PATH with the venv module, which is all the Dockerfile uses
# (it installs into a venv at /opt/venv), and groupadd/useradd.
set -euo pipefail

tag=${1:-orchestrator-base:bookworm-py311}
docker_cli=${DOCKER:-docker}
suite=bookworm
variant=minbase
# python3-venv brings ensurepip's pip and setuptools wheels; passwd: groupadd/useradd;
# ca-certificates as in python:3.11-slim.
packages=(python3 python3-venv ca-certificates passwd)
# Bump when the way the rootfs is made changes (invalidates the cache).
recipe=1

mirror() {
  # The first Debian (not -security) mirror of apt's configuration, deb822 or one-line style.
  local file uri
  for file in /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list; do
    [[ -r $file ]] || continue
    uri=$(awk '
      /^[[:space:]]*#/ { next }
      /^URIs:/ { for (i = 2; i <= NF; i++) print $i; next }
      $1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^(https?|file):/) { print $i; break } }
    ' "$file" | grep -E '/debian/?$' | grep -v -- '-security' | head -n 1 || true)
    if [[ -n $uri ]]; then
      echo "${uri%/}"
      return
    fi
  done
  echo "http://deb.debian.org/debian"
}

key=$(printf '%s\n' "$suite" "$variant" "recipe=$recipe" "${packages[@]}" | sha256sum | cut -c1-16)
cache_dir=${ORCHESTRATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/orchestrator}/base-image
tarball=$cache_dir/$suite-$variant-$key.tar

if [[ $("$docker_cli" image inspect --format '{{ index .Config.Labels "orchestrator.base-key" }}' "$tag" 2>/dev/null || true) == "$key" ]]; then
  echo "$tag is up to date (key $key)" >&2
  echo "$tag"
  exit 0
fi

if [[ ! -s $tarball ]]; then
  command -v debootstrap >/dev/null \
    || { echo "debootstrap not found: apt-get install -y debootstrap (scripts/install-system-deps.sh)" >&2; exit 1; }
  [[ $(id -u) -eq 0 ]] || { echo "debootstrap needs root" >&2; exit 1; }
  mkdir -p "$cache_dir"
  work=$(mktemp -d "$cache_dir/.work.XXXXXX")
  trap 'umount -R "$work/rootfs/proc" "$work/rootfs/sys" 2>/dev/null || true; rm -rf "$work"' EXIT
  url=$(mirror)
  echo "debootstrap $suite ($variant, ${packages[*]}) from $url" >&2
  debootstrap --variant="$variant" --include="$(IFS=,; echo "${packages[*]}")" \
    "$suite" "$work/rootfs" "$url" >"$work/debootstrap.log" 2>&1 \
    || { tail -n 40 "$work/debootstrap.log" >&2; exit 1; }
  # Slim it like the official images: no apt lists or caches, no docs or man pages.
  rm -rf "$work"/rootfs/var/lib/apt/lists/* "$work"/rootfs/var/cache/apt/*.bin \
    "$work"/rootfs/var/cache/apt/archives/*.deb "$work"/rootfs/var/log/* \
    "$work"/rootfs/usr/share/doc/* "$work"/rootfs/usr/share/man/* "$work"/rootfs/usr/share/info/*
  # Sanity: the Python the Dockerfile expects.
  chroot "$work/rootfs" python3 -c 'import sys, venv, ensurepip; assert sys.version_info[:2] == (3, 11), sys.version'
  tar -C "$work/rootfs" --numeric-owner --exclude='./dev/*' --exclude='./proc/*' \
    --exclude='./sys/*' -cf "$work/rootfs.tar" .
  mv "$work/rootfs.tar" "$tarball"
  # Older tarballs of this suite are superseded.
  find "$cache_dir" -maxdepth 1 -name "$suite-$variant-*.tar" ! -name "${tarball##*/}" -delete
fi

echo "docker import $tarball as $tag" >&2
"$docker_cli" import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change "LABEL orchestrator.base-key=$key" \
  --change 'CMD ["python3"]' \
  "$tarball" "$tag" >/dev/null
echo "$tag"
