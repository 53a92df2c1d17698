#!/usr/bin/env bash
# Installs what is missing, builds, and runs the main job. Until the training
# pipeline lands, that is the most complete thing crucible runs: the build and MPI
# report, the resolved demo teacher config, and the size table of every model preset.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
bin=${BUILD_DIR:-build}/crucible
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
"$bin" info
if command -v mpirun >/dev/null; then mpirun --oversubscribe -np 2 "$bin" info; fi
"$bin" config configs/models/tiny-deepseek-v3.toml
"$bin" inspect configs/models/deepseek-v3.toml
for f in configs/models/*.toml; do
  echo
  "$bin" inspect "$f" | head -n 2
done
