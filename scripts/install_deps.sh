#!/usr/bin/env bash
# Installs the Debian packages minidl needs, only those that are missing.
# Usage: scripts/install_deps.sh [extra-package...]
set -euo pipefail

packages=(cmake g++ make nlohmann-json3-dev libeigen3-dev doctest-dev libstb-dev zlib1g-dev libbenchmark-dev
  clang-format "$@")

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  sudo_cmd=()
  if [[ $(id -u) -ne 0 ]]; then sudo_cmd=(sudo); fi
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
