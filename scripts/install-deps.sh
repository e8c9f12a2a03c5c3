#!/usr/bin/env bash
# install-deps.sh -- install every Debian package that Nova's build and tests need.
# Idempotent: when every package is present it changes nothing and touches no network.
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  libssl-dev libzstd-dev liblzma-dev liblz4-dev libjansson-dev libcurl4-openssl-dev
  libcmocka-dev
  clang libclang-rt-14-dev valgrind cppcheck
  zstd lz4 xz-utils python3
  rclone
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

# Node.js and npm run the cloud protocol servers of the tests (tests/servers); a machine
# that already has them (from any source) keeps its own.
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
