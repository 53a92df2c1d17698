#!/usr/bin/env bash
# Installs the Debian 12 packages crucible's build and tests need. Idempotent: it
# asks apt only for what is missing and prints nothing when all is present.
# The CUDA toolkit (nvcc, cuBLASLt, cuDNN, NCCL) is not a Debian package here; the
# build uses it when /usr/local/cuda (or nvcc on PATH) is present.
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config
  libopenmpi-dev openmpi-bin
  libhdf5-dev
  libtomlplusplus-dev
  catch2
  libopenblas-dev
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "setup: installing ${missing[*]}"
sudo_cmd=()
[ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "setup: done"
