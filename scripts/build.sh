#!/usr/bin/env bash
# Configures and builds crucible into ${BUILD_DIR:-build} (Ninja, ccache when present).
# The CUDA backend is built whenever nvcc is found (CRUCIBLE_CUDA=AUTO); set
# CRUCIBLE_CUDA=OFF to skip it.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${BUILD_DIR:-build}
jobs=${JOBS:-$(nproc)}
export PATH="$PATH:/usr/local/cuda/bin"
if [ ! -f "$build_dir/build.ninja" ]; then
  cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DCRUCIBLE_CUDA="${CRUCIBLE_CUDA:-AUTO}" >"$build_dir.configure.log" 2>&1 \
    || { cat "$build_dir.configure.log"; exit 1; }
fi
cmake --build "$build_dir" -j "$jobs"
