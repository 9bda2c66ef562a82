#!/usr/bin/env bash
# Installs what p11pki needs from Debian 12's packages (only what is
# missing), then configures and builds into build/ (or $BUILD_DIR).
# Usage: scripts/setup.sh [--sanitize] [--fuzz]
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(build-essential cmake pkg-config clang libclang-rt-14-dev
          libssl-dev openssl libp11-dev libp11-kit-dev softhsm2 opensc
          libcmocka-dev libsqlite3-dev libidn2-dev libevent-dev libjemalloc-dev
          gnutls-bin libnss3-tools curl)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing packages (${missing[*]}); run as root or install them" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

build=${BUILD_DIR:-build}
opts=(-DCMAKE_BUILD_TYPE=RelWithDebInfo)
for a in "$@"; do
  case "$a" in
    --sanitize) build=${BUILD_DIR:-build-asan}; opts+=(-DP11PKI_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug) ;;
    --fuzz) build=${BUILD_DIR:-build-fuzz}; opts+=(-DP11PKI_FUZZ=ON -DP11PKI_SANITIZE=ON -DCMAKE_C_COMPILER=clang) ;;
    *) echo "setup: unknown option $a" >&2; exit 2 ;;
  esac
done
cmake -S . -B "$build" "${opts[@]}" >/dev/null
cmake --build "$build" -j"$(nproc)"
echo "$build"
