#!/usr/bin/env bash
# Installs what is missing, builds, and runs the main job: the demo pipeline
# (configs/demo.toml, embedded in the binary) into runs/demo, then prints its report.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
bin=${BUILD_DIR:-build}/crucible
"$bin" run configs/demo.toml "$@"
out=$("$bin" run configs/demo.toml "$@" --print-config | sed -n 's/^out_dir = "\(.*\)"/\1/p' | head -n 1)
echo
echo "report: $out/report.json"
cat "$out/report.json"
