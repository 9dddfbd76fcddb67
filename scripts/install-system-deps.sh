#!/usr/bin/env bash
# Installs the Debian packages the tests start for real (ZooKeeper, Docker Engine, Prometheus,
# HAProxy, Alertmanager, nftables for fault injection,
# a static busybox and debootstrap for locally made images) when they are missing, and checks
# the toolchains.
# Idempotent: with everything present it only checks.
set -euo pipefail

packages=(zookeeper docker.io docker-compose prometheus busybox-static iproute2 chromium openjdk-17-jre-headless
  debootstrap haproxy nftables prometheus-alertmanager)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
    || missing+=("$package")
done
# Java is often present from elsewhere (a JDK); then the JRE package is not needed.
if command -v java >/dev/null; then
  missing=("${missing[@]/openjdk-17-jre-headless}")
fi
read -r -a missing <<<"${missing[*]:-}"

if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "missing Debian packages: ${missing[*]}; run as root or: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  echo "installing Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

command -v go >/dev/null || { echo "Go is required to build testenv (go 1.25 or newer)" >&2; exit 1; }
command -v java >/dev/null || { echo "java is required by ZooKeeper" >&2; exit 1; }
command -v npm >/dev/null || { echo "Node.js 20 with npm is required by the UI (ui/)" >&2; exit 1; }
