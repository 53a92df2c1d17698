// kernels/cuda/weight_cache.cpp: per-thread cache of weights' GEMM operands inside
// ops::WeightCacheScope (contract in weight_cache.h).
#include "kernels/cuda/weight_cache.h"

#include <map>
#include <tuple>
#include <vector>

#include "core/error.h"
#include "kernels/cuda/fp8_quantize_cuda.h"

#include "kernels/cuda/gemm_prep_cuda.h"

namespace crucible::cuda {

namespace {

enum class Form : int { Bf16, Fp8, Fp8Transposed, Bf16Transposed };

// (device, address, rows, cols, form, rows_p, k_p)
using Key = std::tuple<int, const void*, std::int64_t, std::int64_t, Form, std::int64_t, std::int64_t>;

struct Entry {
  DeviceScratch bf16;  // Form::Bf16
  Fp8GemmInput fp8;    // the FP8 forms
};

// (device, first weight, count, hash of every weight's address, rows, cols, form, rows_p, k_p)
using GroupKey = std::tuple<int, const void*, std::size_t, std::uint64_t, std::int64_t, std::int64_t, Form,
                            std::int64_t, std::int64_t>;

struct Cache {
  std::map<Key, Entry> entries;
  std::map<GroupKey, Fp8WeightGroup> groups;
  std::map<GroupKey, DeviceScratch> bf16_groups;
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

GroupKey group_key_of(std::span<const Tensor> w, Form form, std::int64_t rows_p, std::int64_t k_p) {
  std::uint64_t h = 1469598103934665603ull;  // FNV-1a over the addresses
  for (const Tensor& t : w) {
    h ^= reinterpret_cast<std::uintptr_t>(t.raw());
    h *= 1099511628211ull;
  }
  return GroupKey{w[0].device().index, w[0].raw(), w.size(), h, w[0].dim(0), w[0].dim(1), form, rows_p, k_p};
}

// The weights' f32 sources, checked to share w[0]'s shape.
std::vector<const float*> sources(std::span<const Tensor> w, const char* what) {
  const std::int64_t rows = w[0].dim(0), cols = w[0].dim(1);
  std::vector<const float*> src;
  src.reserve(w.size());
  for (const Tensor& t : w) {
    CRUCIBLE_CHECK(t.dim(0) == rows && t.dim(1) == cols && t.dtype() == DType::F32, what,
                   ": every weight must be an f32 [", rows, ", ", cols, "]; got ", t.shape().str());
    src.push_back(f32(t));
  }
  return src;
}

DeviceScratch make_bf16_group(std::span<const Tensor> w, bool transposed, std::int64_t ld, cudaStream_t st) {
  const std::vector<const float*> src = sources(w, "weight_bf16_group");
  const std::int64_t rows = w[0].dim(0), cols = w[0].dim(1), R = transposed ? cols : rows;
  DeviceScratch out(static_cast<std::size_t>(static_cast<std::int64_t>(w.size()) * R * ld) * 2, st);
  std::vector<Bf16Band> bands;
  for (std::size_t g = 0; g < w.size(); ++g)
    bands.push_back(Bf16Band{src[g], rows, out.as<std::uint16_t>() + static_cast<std::int64_t>(g) * R * ld, ld});
  bf16_bands(bands, cols, transposed, st);
  return out;
}

Fp8WeightGroup make_fp8_group(std::span<const Tensor> w, bool transposed, std::int64_t rows_p, std::int64_t k_p,
                              cudaStream_t st) {
  const std::int64_t rows = w[0].dim(0), cols = w[0].dim(1);
  const std::vector<const float*> src = sources(w, "weight_fp8_group");
  Fp8WeightGroup g;
  g.rows_p = rows_p;
  g.k_p = k_p;
  const auto G = static_cast<std::int64_t>(w.size());
  g.q = DeviceScratch(static_cast<std::size_t>(G * rows_p * k_p), st);
  g.scale = DeviceScratch(static_cast<std::size_t>(G * g.Rp() * g.L4()) * sizeof(float), st);
  quantize_fp8_weight_blocks(src, rows, cols, transposed, g.q.as<std::uint8_t>(), g.scale.as<float>(), rows_p, k_p,
                             st);
  return g;
}

}  // namespace

const Fp8WeightGroup& weight_fp8_group(std::span<const Tensor> w, bool transposed, std::int64_t rows_p,
                                       std::int64_t k_p, Fp8WeightGroup& local, cudaStream_t stream) {
  CRUCIBLE_CHECK(!w.empty(), "weight_fp8_group: no weights");
  if (!ops::weight_cache_active()) {
    local = make_fp8_group(w, transposed, rows_p, k_p, stream);
    return local;
  }
  Cache& c = cache();
  const auto n = static_cast<std::int64_t>(w.size());
  const auto [it, fresh] =
      c.groups.try_emplace(group_key_of(w, transposed ? Form::Fp8Transposed : Form::Fp8, rows_p, k_p));
  if (fresh) {
    it->second = make_fp8_group(w, transposed, rows_p, k_p, stream);
    c.stats.misses += n;
    c.stats.bytes += static_cast<std::size_t>(n * rows_p * k_p);
  } else {
    c.stats.hits += n;
  }
  return it->second;
}

const std::uint16_t* weight_bf16_group(std::span<const Tensor> w, bool transposed, std::int64_t ld,
                                       DeviceScratch& local, cudaStream_t stream) {
  CRUCIBLE_CHECK(!w.empty(), "weight_bf16_group: no weights");
  if (!ops::weight_cache_active()) {
    local = make_bf16_group(w, transposed, ld, stream);
    return local.as<std::uint16_t>();
  }
  Cache& c = cache();
  const auto n = static_cast<std::int64_t>(w.size());
  const auto [it, fresh] = c.bf16_groups.try_emplace(group_key_of(w, transposed ? Form::Bf16Transposed : Form::Bf16, ld, 0));
  if (fresh) {
    it->second = make_bf16_group(w, transposed, ld, stream);
    c.stats.misses += n;
    c.stats.bytes += static_cast<std::size_t>(n * (transposed ? w[0].dim(1) : w[0].dim(0)) * ld * 2);
  } else {
    c.stats.hits += n;
  }
  return it->second.as<std::uint16_t>();
}

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
  c.groups.clear();
  c.bf16_groups.clear();
  c.stats = {};
}

}  // namespace crucible::cuda
