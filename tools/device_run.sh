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
# The whole run (tests/gpu alone took 8.5 min on the H100) can exceed a 10-minute
# device call; run it in parts there:
#   bash tools/device_run.sh tests ['[tag]...']   # tests/gpu only (Catch2 filter)
#   bash tools/device_run.sh bench                # the benchmarks and their peers only
#   bash tools/device_run.sh trace                # the h100 teacher's step, kernel by kernel
#                                                 # (bench/gpu/trace through CUPTI), both precisions
#   bash tools/device_run.sh dp                   # 2+ GPUs: data parallel over NCCL (mpirun):
#                                                 # the 2-rank NCCL and overlap tests, bench_gpu_dp_step on 1
#                                                 # and N ranks (and NCCL's native sum on N) vs PyTorch
#                                                 # DDP (torchrun), and the demo on N ranks,
#                                                 # overlap_reduce on and off
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-device-out}
mkdir -p "$out"
stage=${STAGE:-build-cuda/stage}  # STAGE: another folder of the same binaries (a subset to carry)

if [ "${1:-}" = "--prepare" ]; then
  set -e
  BUILD_DIR=build-cuda CRUCIBLE_CUDA=ON bash scripts/build.sh
  rm -rf "$stage" && mkdir -p "$stage/lib"
  cp build-cuda/crucible build-cuda/tests/test_gpu build-cuda/bench/bench_gpu_* "$stage/"
  cp -L /usr/lib/x86_64-linux-gnu/libtomlplusplus.so.3 "$stage/lib/"
  # The per-kernel tracer and the CUPTI it loads (the GPU image has no Nsight).
  if [ -f build-cuda/bench/libcrucible_kernel_trace.so ]; then
    cp build-cuda/bench/libcrucible_kernel_trace.so "$stage/lib/"
    for cupti in /usr/local/cuda/lib64/libcupti.so.* /usr/local/cuda/extras/CUPTI/lib64/libcupti.so.*; do
      if [ -f "$cupti" ]; then cp -L "$cupti" "$stage/lib/"; break; fi
    done
  fi
  # configs/h100.toml's tokenizer, where ../shared has it (the device sees the working
  # tree only): run it there with --set task.tokenizer=build-cuda/stage/deepseek_v3.
  if [ -f ../shared/data/tokenizers/deepseek_v3/tokenizer.json ]; then
    cp -r ../shared/data/tokenizers/deepseek_v3 "$stage/"
  fi
  strip --strip-debug "$stage"/crucible "$stage"/test_gpu "$stage"/bench_gpu_*
  du -sh "$stage"
  exit 0
fi
if [ "${1:-}" = "--build" ]; then
  BUILD_DIR=build-cuda CRUCIBLE_CUDA=ON bash scripts/build.sh && mkdir -p "$stage" &&
    cp build-cuda/crucible build-cuda/tests/test_gpu build-cuda/bench/bench_gpu_* "$stage/"
  shift
fi

export LD_LIBRARY_PATH="$PWD/$stage/lib:${LD_LIBRARY_PATH:-}"
part=${1:-all}
filter=${2:-}
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv,noheader | tee "$out/gpu.txt"
status=0
"$stage/crucible" info | tee "$out/info.txt" || status=1
: > "$out/test_gpu.txt"
if [ "$part" = all ] || [ "$part" = tests ]; then
  "$stage/test_gpu" $filter 2>&1 | tee "$out/test_gpu.txt"
  [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
fi
if [ "$part" != dp ]; then
  : > "$out/bench.txt"
  : > "$out/sdpa.txt"
  : > "$out/hf_step.txt"
  : > "$out/hf_generate.txt"
fi
: > "$out/dp.txt"
if [ "$part" = dp ]; then
  # NVLink multicast stays off on shared multi-GPU hosts (the device tool's KINDS.md).
  export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
  gpus=$(nvidia-smi -L | wc -l)
  mpi=(mpirun --bind-to none -x LD_LIBRARY_PATH -x NCCL_NVLS_ENABLE)
  "$stage/test_gpu" '[nccl],[grad_overlap]' 2>&1 | tail -n 3 | tee -a "$out/test_gpu.txt"
  [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
  for np in $(printf '%s\n' 1 "$gpus" | sort -un); do
    for prec in bf16 fp8; do
      "${mpi[@]}" -np "$np" "$stage/bench_gpu_dp_step" --precision "$prec" --hf-config "$out/hf_dp" 2>&1 |
        sed "s/^dp \([a-z]*\) /dp crucible_${prec}_\1 /" | tee -a "$out/dp.txt"
      [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
    done
    # NCCL's own all-reduce (not deterministic) beside the deterministic sum, on N ranks.
    if [ "$np" -gt 1 ]; then
      "${mpi[@]}" -np "$np" "$stage/bench_gpu_dp_step" --precision bf16 --native 1 2>&1 |
        sed "s/^dp \([a-z]*\) /dp crucible_bf16native_\1 /" | tee -a "$out/dp.txt"
      [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
    fi
    if python3 -c "import transformers" 2>/dev/null && [ -f "$out/hf_dp/config.json" ]; then
      torchrun --nproc_per_node "$np" tools/bench_hf_ddp.py "$out/hf_dp" 2>&1 | grep -v "^W[0-9]* " |
        tee -a "$out/dp.txt" || status=1
    fi
  done
  # The pipeline on all GPUs: the demo with the overlapped gradient sum and without;
  # deterministic reductions, so every logged figure but the timings must agree.
  for ov in true false; do
    "${mpi[@]}" -np "$gpus" "$stage/crucible" run configs/demo.toml --set run.device=cuda \
      --set run.out_dir="/tmp/demo_overlap_$ov" --set run.overlap_reduce=$ov > "$out/demo_overlap_$ov.txt" 2>&1 ||
      status=1
    tail -n 1 "$out/demo_overlap_$ov.txt"
  done
  python3 - /tmp/demo_overlap_true /tmp/demo_overlap_false <<'PY' |
import json, sys
def lines(run):
    out = []
    for l in open(run + "/metrics.jsonl"):
        d = json.loads(l)
        out.append({k: v for k, v in d.items() if "per_s" not in k and "second" not in k and "time" not in k})
    return out
def accuracies(run):
    stages = json.load(open(run + "/report.json"))["stages"]
    return " ".join(f"{name} {s['after']['accuracy']:.3f}" for name, s in stages.items() if "after" in s)
a, b = lines(sys.argv[1]), lines(sys.argv[2])
same = sum(x == y for x, y in zip(a, b))
print(f"demo metrics, overlap_reduce true vs false: {same} of {len(a)} lines identical (vs {len(b)})")
for run in sys.argv[1:]:
    print(f"demo held-out accuracy after each stage ({run}): {accuracies(run)}")
PY
    tee -a "$out/dp.txt"
fi
if [ "$part" = trace ]; then
  # Only the timed steps count (their cudaProfilerStart/Stop range); DIV = --iters.
  for prec in fp8 bf16; do
    CRUCIBLE_TRACE_DIV=5 CRUCIBLE_TRACE_TOP=25 LD_PRELOAD="$PWD/$stage/lib/libcrucible_kernel_trace.so" \
      "$stage/bench_gpu_model_step" --precision "$prec" --iters 5 2>&1 | tee "$out/trace_$prec.txt" ||
      status=1
  done
fi
if [ "$part" = all ] || [ "$part" = bench ]; then
  for b in "$stage"/bench_gpu_*; do
    [ -x "$b" ] || continue
    [ "$(basename "$b")" = bench_gpu_dp_step ] && continue  # the dp part runs it under mpirun
    args=()
    # The model-step benchmark writes the config.json its transformers peer loads.
    [ "$(basename "$b")" = bench_gpu_model_step ] && args=(--hf-config "$out/hf_step")
    [ "$(basename "$b")" = bench_gpu_generate ] && args=(--hf-config "$out/hf_generate")
    "$b" "${args[@]}" 2>&1 | tee -a "$out/bench.txt" || status=1
  done
  # The PyTorch peers (same keys), where torch is installed: SDPA for bench_gpu_attention,
  # transformers' DeepseekV3 training step for bench_gpu_model_step.
  if python3 -c "import torch" 2>/dev/null; then
    python3 tools/bench_sdpa.py 2>&1 | tee "$out/sdpa.txt" || status=1
    if [ -f "$out/hf_step/config.json" ] && python3 -c "import transformers" 2>/dev/null; then
      python3 tools/bench_hf_step.py "$out/hf_step" 2>&1 | tee "$out/hf_step.txt" || status=1
    fi
    if [ -f "$out/hf_generate/config.json" ] && python3 -c "import transformers" 2>/dev/null; then
      python3 tools/bench_hf_generate.py "$out/hf_generate" 2>&1 | tee "$out/hf_generate.txt" || status=1
    fi
  fi
fi

echo
echo "== summary =="
printf '%-28s %s\n' "gpu" "$(cat "$out/gpu.txt")"
printf '%-28s %s\n' "tests/gpu" "$(tail -n 2 "$out/test_gpu.txt" | tr -s '\n' ' ')"
cat "$out/bench.txt" 2>/dev/null
if grep -q '^attn ' "$out/sdpa.txt" 2>/dev/null; then
  echo
  echo "== attention: ours / PyTorch SDPA (TFLOP/s ratio; same FLOP count on both sides) =="
  awk 'FNR == NR { if ($1 == "attn" && NF == 4) sdpa[$2] = $4; next }
       $1 == "attn" && NF == 4 && ($2 in sdpa) && sdpa[$2] > 0 {
         printf "%-36s ours %8.1f  sdpa %8.1f  ratio %6.2f\n", $2, $4, sdpa[$2], $4 / sdpa[$2] }' \
    "$out/sdpa.txt" "$out/bench.txt"
fi
# "KIND hf_bf16 ms rate" in PEER against the "KIND crucible_* ms rate" lines of bench.txt.
transformers_ratio() {
  local kind=$1 peer=$2 title=$3
  grep -q "^$kind hf_bf16 " "$peer" 2>/dev/null || return 0
  echo
  echo "== $title =="
  awk -v kind="$kind" 'FNR == NR { if ($1 == kind && $2 == "hf_bf16") hf = $4; next }
       $1 == kind && $2 ~ /^crucible_/ && hf > 0 {
         printf "%-20s ours %10.0f  transformers %10.0f  ratio %6.2f\n", $2, $4, hf, $4 / hf }' \
    "$peer" "$out/bench.txt"
}
transformers_ratio step "$out/hf_step.txt" \
  "training step: ours / transformers DeepseekV3 BF16 (tokens/s ratio; same config and batch)"
transformers_ratio generate "$out/hf_generate.txt" \
  "generate: ours / transformers generate BF16 (new tokens/s ratio; same config, batch, lengths)"
if grep -q '^dp hf_ddp ' "$out/dp.txt"; then
  echo
  echo "== data parallel: ours (overlapped sum) / PyTorch DDP BF16 (job tokens/s ratio; same config, per-rank batch) =="
  awk '$1 == "dp" && $2 == "hf_ddp" { split($3, w, "="); hf[w[2]] = $5 }
       $1 == "dp" && $2 ~ /^crucible_.*_overlap$/ { split($3, w, "="); ours[$2 " " w[2]] = $5 }
       END { for (k in ours) { split(k, p, " "); if (hf[p[2]] > 0)
               printf "%-26s world %s  ours %10.0f  ddp %10.0f  ratio %6.2f\n", p[1], p[2], ours[k], hf[p[2]], ours[k] / hf[p[2]] } }' \
    "$out/dp.txt" | sort
fi
exit $status
