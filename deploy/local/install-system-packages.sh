#!/usr/bin/env bash
# Installs the Debian packages CityStream's local runtime and tests need, only those missing.
# Base list below; services add theirs to apt-packages.txt beside this script (one name per line).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
base=(openjdk-17-jre-headless maven postgresql-15 postgresql-server-dev-15 dpkg-dev cmake gcc make libssl-dev)
mapfile -t extra < <(grep -vE '^\s*(#|$)' "$here/apt-packages.txt" 2>/dev/null || true)
missing=()
for package in "${base[@]}" "${extra[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done
# A JDK that is already on PATH (e.g. a Temurin build) serves as well as Debian's.
if command -v java >/dev/null 2>&1; then
  missing=("${missing[@]/openjdk-17-jre-headless}")
fi
missing=($(printf '%s\n' "${missing[@]}" | grep -v '^$' || true))
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "installing system packages: ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  echo "error: need root to install ${missing[*]} (run: sudo apt-get install ${missing[*]})" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
# policy-rc.d keeps Debian from starting daemons (e.g. prometheus) we only want the binaries of.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get install -y -q --no-install-recommends "${missing[@]}"
