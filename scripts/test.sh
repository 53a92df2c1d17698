#!/usr/bin/env bash
# Installs what is missing, builds, and runs every CPU test (ctest). GPU tests live
# in tests/gpu and run on a GPU machine through tools/device_run.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
build_dir=${BUILD_DIR:-build}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
ctest --test-dir "$build_dir" --output-on-failure --timeout 900
