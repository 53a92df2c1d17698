// bench/gpu/bench_timing.h: timing and input helpers shared by the GPU benchmarks.
// Timing: CUDA events around each call on one stream, kWarmup warm-up calls, the median of
// kReps.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "core/cuda_check.h"

namespace crucible::bench {

constexpr int kWarmup = 3;
constexpr int kReps = 20;

// Median time of kReps calls, each between its own pair of events on `stream`.
template <typename F>
double median_ms(F&& f, cudaStream_t stream) {
  for (int i = 0; i < kWarmup; ++i) f();
  std::vector<cudaEvent_t> start(kReps), stop(kReps);
  for (int i = 0; i < kReps; ++i) {
    CHECK_CUDA(cudaEventCreate(&start[i]));
    CHECK_CUDA(cudaEventCreate(&stop[i]));
  }
  CHECK_CUDA(cudaStreamSynchronize(stream));
  for (int i = 0; i < kReps; ++i) {
    CHECK_CUDA(cudaEventRecord(start[i], stream));
    f();
    CHECK_CUDA(cudaEventRecord(stop[i], stream));
  }
  CHECK_CUDA(cudaStreamSynchronize(stream));
  std::vector<float> ms(kReps);
  for (int i = 0; i < kReps; ++i) {
    CHECK_CUDA(cudaEventElapsedTime(&ms[i], start[i], stop[i]));
    cudaEventDestroy(start[i]);
    cudaEventDestroy(stop[i]);
  }
  std::nth_element(ms.begin(), ms.begin() + kReps / 2, ms.end());
  return ms[kReps / 2];
}

// Host values with a cheap generator (xorshift), roughly uniform in [-2, 2): the contents
// only have to be realistic enough for the tensor cores' power draw, not random-grade.
inline void fill(std::vector<float>& v, std::uint32_t seed) {
  std::uint32_t s = seed | 1u;
  for (float& x : v) {
    s ^= s << 13;
    s ^= s >> 17;
    s ^= s << 5;
    x = static_cast<float>(static_cast<std::int32_t>(s)) * 0x1p-30f;
  }
}

}  // namespace crucible::bench
