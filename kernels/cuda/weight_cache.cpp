// kernels/cuda/weight_cache.cpp: per-thread cache of weights' GEMM operands inside
// ops::WeightCacheScope (contract in weight_cache.h).
#include "kernels/cuda/weight_cache.h"

#include <map>
#include <tuple>

#include "kernels/cuda/gemm_prep_cuda.h"

namespace crucible::cuda {

namespace {

enum class Form : int { Bf16, Fp8, Fp8Transposed };

// (device, address, rows, cols, form, rows_p, k_p)
using Key = std::tuple<int, const void*, std::int64_t, std::int64_t, Form, std::int64_t, std::int64_t>;

struct Entry {
  DeviceScratch bf16;  // Form::Bf16
  Fp8GemmInput fp8;    // the FP8 forms
};

struct Cache {
  std::map<Key, Entry> entries;
  WeightCacheStats stats;
};

Cache& cache() {
  thread_local Cache c;
  return c;
}

Key key_of(const Tensor& w, Form form, std::int64_t rows_p, std::int64_t k_p) {
  return Key{w.device().index, w.raw(), w.dim(0), w.dim(1), form, rows_p, k_p};
}

const float* f32(const Tensor& t) { return static_cast<const float*>(t.raw()); }

Fp8GemmInput make_fp8(const Tensor& w, bool transposed, std::int64_t rows_p, std::int64_t k_p, cudaStream_t st) {
  const std::int64_t rows = w.dim(0), cols = w.dim(1);
  if (!transposed) return quantize_gemm_operand(f32(w), rows, cols, ScaleLayout::Block128x128, rows_p, k_p, st);
  // W^T's 128x128 blocks hold W's blocks transposed (same amax, same codes).
  DeviceScratch wt(static_cast<std::size_t>(rows * cols) * sizeof(float), st);  // [cols, rows]
  transpose_f32(f32(w), wt.as<float>(), rows, cols, st);
  return quantize_gemm_operand(wt.as<float>(), cols, rows, ScaleLayout::Block128x128, rows_p, k_p, st);
}

}  // namespace

const std::uint16_t* weight_bf16(const Tensor& w, DeviceScratch& local, cudaStream_t stream) {
  if (!ops::weight_cache_active()) {
    local = bf16_copy(w, stream);
    return local.as<std::uint16_t>();
  }
  Cache& c = cache();
  const auto [it, fresh] = c.entries.try_emplace(key_of(w, Form::Bf16, 0, 0));
  if (fresh) {
    it->second.bf16 = bf16_copy(w, stream);
    ++c.stats.misses;
    c.stats.bytes += static_cast<std::size_t>(w.numel()) * 2;
  } else {
    ++c.stats.hits;
  }
  return it->second.bf16.as<std::uint16_t>();
}

const Fp8GemmInput& weight_fp8(const Tensor& w, bool transposed, std::int64_t rows_p, std::int64_t k_p,
                               Fp8GemmInput& local, cudaStream_t stream) {
  if (!ops::weight_cache_active()) {
    local = make_fp8(w, transposed, rows_p, k_p, stream);
    return local;
  }
  Cache& c = cache();
  const Form form = transposed ? Form::Fp8Transposed : Form::Fp8;
  const auto [it, fresh] = c.entries.try_emplace(key_of(w, form, rows_p, k_p));
  if (fresh) {
    it->second.fp8 = make_fp8(w, transposed, rows_p, k_p, stream);
    ++c.stats.misses;
    c.stats.bytes += static_cast<std::size_t>(rows_p * k_p);  // codes; the scales add 1/4096 of it
  } else {
    ++c.stats.hits;
  }
  return it->second.fp8;
}

WeightCacheStats weight_cache_stats() { return cache().stats; }

void release_weight_cache() {
  Cache& c = cache();
  c.entries.clear();  // each DeviceScratch frees in its stream's order
  c.stats = {};
}

}  // namespace crucible::cuda
