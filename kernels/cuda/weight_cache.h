// kernels/cuda/weight_cache.h: the CUDA side of ops::WeightCacheScope (kernels/linear.h):
// a weight's GEMM operand (BF16 copy, FP8 128x128-block codes of W or of W^T) made once per
// scope and reused, or made afresh per call when no scope is open.
//
// Entries are per thread, keyed by (device, address, shape, form, padding); they live in the
// stream-ordered pool of the stream that made them and are freed, in that stream's order,
// when the outermost scope ends. The weights are read on `stream`, so a cached operand is
// safe for work on the same stream (the project runs one stream per device).
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <span>

#include "core/tensor.h"
#include "kernels/cuda/linear_cuda.h"

namespace crucible::cuda {

// The BF16 (RNE) copy of the f32 weight w (device, contiguous): the cached one inside a
// scope (made on first use), else made into `local`. Valid while `local` and the scope live.
const std::uint16_t* weight_bf16(const Tensor& w, DeviceScratch& local, cudaStream_t stream);

// w [rows, k] (or, with transposed, W^T [k, rows]) quantized to E4M3 in 128x128 blocks and
// laid out by quantize_gemm_operand, zero-padded to [rows_p, k_p] (of the operand's own
// rows and K): the cached one inside a scope, else made into `local`.
const Fp8GemmInput& weight_fp8(const Tensor& w, bool transposed, std::int64_t rows_p, std::int64_t k_p,
                               Fp8GemmInput& local, cudaStream_t stream);

// G weights of one shape, each quantized as weight_fp8 would (W or W^T in 128x128 blocks,
// [rows_p, k_p]), made in one launch: weight g's codes at codes(g), its block scales
// ([Rp, L4], K blocks contiguous) at scales(g).
struct Fp8WeightGroup {
  DeviceScratch q, scale;
  std::int64_t rows_p = 0, k_p = 0;
  std::int64_t Rp() const { return (rows_p + kFp8BlockSize - 1) / kFp8BlockSize; }           // block rows
  std::int64_t L4() const { return ((k_p + kFp8BlockSize - 1) / kFp8BlockSize + 3) / 4 * 4; }  // K blocks, padded
  const std::uint8_t* codes(std::size_t g) const { return q.as<std::uint8_t>() + g * rows_p * k_p; }
  const float* scales(std::size_t g) const { return scale.as<float>() + g * Rp() * L4(); }
};

// Every weight of w (same shape) as weight_fp8(w[g], transposed, rows_p, k_p) gives it, bit
// for bit, in one launch for all of them: the cached group inside a scope (keyed by the
// whole list; each weight counts as one lookup in the stats), else made into `local`.
const Fp8WeightGroup& weight_fp8_group(std::span<const Tensor> w, bool transposed, std::int64_t rows_p,
                                       std::int64_t k_p, Fp8WeightGroup& local, cudaStream_t stream);

// Every weight of w (same shape [rows, cols]) rounded to BF16 in one launch, as W (transposed
// false: [rows, ld], ld >= cols) or W^T ([cols, ld], ld >= rows), ld a multiple of 8, zero
// beyond: weight g at the result + g * (rows or cols) * ld. The cached group inside a scope
// (each weight counts as one lookup), else made into `local`.
const std::uint16_t* weight_bf16_group(std::span<const Tensor> w, bool transposed, std::int64_t ld,
                                       DeviceScratch& local, cudaStream_t stream);

// This thread's cache since its last release: lookups that found an entry, entries made,
// and their device bytes (for tests and logs).
struct WeightCacheStats {
  std::int64_t hits = 0, misses = 0;
  std::size_t bytes = 0;
};
WeightCacheStats weight_cache_stats();

// Frees this thread's entries (stream-ordered) and zeroes its stats; the outermost
// ops::WeightCacheScope calls it on exit.
void release_weight_cache();

}  // namespace crucible::cuda
