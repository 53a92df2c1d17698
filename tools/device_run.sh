#!/usr/bin/env bash
# The one device script: on a GPU machine, run the GPU tests and benchmarks of a
# CUDA build and print a short table last. Logs go to $OUT (or ./device-out).
#
# From a developer machine without a GPU (the device tool carries the build):
#   bash tools/device_run.sh --prepare      # builds build-cuda here and stages
#                                           # binaries + libtomlplusplus in build-cuda/stage
#   device run: bash tools/device_run.sh    (carry: build-cuda/stage)
# On a machine with a GPU and the build tools, `bash tools/device_run.sh --build`
# builds there first (needs toml++, HDF5 and Catch2 headers).
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-device-out}
mkdir -p "$out"
stage=build-cuda/stage

if [ "${1:-}" = "--prepare" ]; then
  set -e
  BUILD_DIR=build-cuda CRUCIBLE_CUDA=ON bash scripts/build.sh
  rm -rf "$stage" && mkdir -p "$stage/lib"
  cp build-cuda/crucible build-cuda/tests/test_gpu build-cuda/bench/bench_gpu_* "$stage/"
  cp -L /usr/lib/x86_64-linux-gnu/libtomlplusplus.so.3 "$stage/lib/"
  strip --strip-debug "$stage"/crucible "$stage"/test_gpu "$stage"/bench_gpu_*
  du -sh "$stage"
  exit 0
fi
if [ "${1:-}" = "--build" ]; then
  BUILD_DIR=build-cuda CRUCIBLE_CUDA=ON bash scripts/build.sh && mkdir -p "$stage" &&
    cp build-cuda/crucible build-cuda/tests/test_gpu build-cuda/bench/bench_gpu_* "$stage/"
fi

export LD_LIBRARY_PATH="$PWD/$stage/lib:${LD_LIBRARY_PATH:-}"
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv,noheader | tee "$out/gpu.txt"
status=0
"$stage/crucible" info | tee "$out/info.txt" || status=1
"$stage/test_gpu" 2>&1 | tee "$out/test_gpu.txt"
test_rc=${PIPESTATUS[0]}
[ "$test_rc" -eq 0 ] || status=1
: > "$out/bench.txt"
for b in "$stage"/bench_gpu_*; do
  [ -x "$b" ] || continue
  "$b" 2>&1 | tee -a "$out/bench.txt" || status=1
done
# The PyTorch peer of bench_gpu_attention (same keys), where torch is installed.
: > "$out/sdpa.txt"
if python3 -c "import torch" 2>/dev/null; then
  python3 tools/bench_sdpa.py 2>&1 | tee "$out/sdpa.txt" || status=1
fi

echo
echo "== summary =="
printf '%-28s %s\n' "gpu" "$(cat "$out/gpu.txt")"
printf '%-28s %s\n' "tests/gpu" "$(tail -n 2 "$out/test_gpu.txt" | tr -s '\n' ' ')"
cat "$out/bench.txt"
if grep -q '^attn ' "$out/sdpa.txt"; then
  echo
  echo "== attention: ours / PyTorch SDPA (TFLOP/s ratio; same FLOP count on both sides) =="
  awk 'FNR == NR { if ($1 == "attn" && NF == 4) sdpa[$2] = $4; next }
       $1 == "attn" && NF == 4 && ($2 in sdpa) && sdpa[$2] > 0 {
         printf "%-36s ours %8.1f  sdpa %8.1f  ratio %6.2f\n", $2, $4, sdpa[$2], $4 / sdpa[$2] }' \
    "$out/sdpa.txt" "$out/bench.txt"
fi
exit $status
