#!/usr/bin/env bash
# Installs what a fresh Debian 12 machine lacks to build and test falcon-mlir.
set -euo pipefail
packages=(cmake ninja-build ccache g++ python3 git
          llvm-22-dev libmlir-22-dev mlir-22-tools llvm-22-tools lld-22 lld clang-22 libclang-rt-22-dev
          libomp-22-dev libgtest-dev libgmock-dev libdnnl-dev libxxhash-dev
          libopenmpi-dev openmpi-bin python3-yaml)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: everything is installed"
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
echo "install-deps: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
