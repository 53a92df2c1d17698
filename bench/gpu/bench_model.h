// bench/gpu/bench_model.h: the common setup of the whole-model GPU benchmarks
// (model_step.cpp, generate.cpp): "--name value" options, the preset (and the
// config.json their transformers peers load), random weights on the GPU in a chosen
// precision, random token sequences, and wall-clock medians of whole calls.
#pragma once

#include <cuda_profiler_api.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "checkpoints/hf_config.h"
#include "launch/model_config_fields.h"
#include "model/weights.h"

namespace crucible::bench {

// The value after `--name` in argv, or `fallback`.
inline std::string option(int argc, char** argv, const char* name, const std::string& fallback) {
  for (int i = 1; i + 1 < argc; i += 2)
    if (!std::strcmp(argv[i], name)) return argv[i + 1];
  return fallback;
}
inline std::int64_t option(int argc, char** argv, const char* name, std::int64_t fallback) {
  const std::string v = option(argc, argv, name, std::string());
  return v.empty() ? fallback : std::atoll(v.c_str());
}

// The preset's config; with hf_dir, also hf_dir/config.json (transformers v4 keys).
inline ModelConfig load_bench_model(const std::string& preset, const std::string& hf_dir) {
  const ModelConfig c = launch::load_model_config(preset);
  if (!hf_dir.empty()) {
    std::filesystem::create_directories(hf_dir);
    std::ofstream(hf_dir + "/config.json") << json::dump(checkpoints::model_config_to_hf(c), 2);
  }
  return c;
}

// The weights of `init` (host) on `dev` (GPU 0 unless given), the linear layers in `precision`.
inline std::unique_ptr<ModelWeights> gpu_weights(const ModelWeights& init, Precision precision, bool with_grads,
                                                Device dev = Device::cuda(0)) {
  ModelConfig c = init.config();
  c.precision = precision;
  auto out = std::make_unique<ModelWeights>(c, dev, with_grads);
  out->params().flat().copy_from(init.copy_to(dev, with_grads)->params().flat());
  return out;
}

// n sequences of `len` uniform random token ids below `vocab` (std::mt19937, `seed`).
inline std::vector<std::vector<std::int32_t>> random_sequences(std::int64_t n, std::int64_t len, std::int64_t vocab,
                                                               unsigned seed) {
  std::mt19937 gen(seed);
  std::vector<std::vector<std::int32_t>> out(static_cast<std::size_t>(n));
  for (auto& s : out)
    for (std::int64_t i = 0; i < len; ++i) s.push_back(static_cast<std::int32_t>(gen() % vocab));
  return out;
}

// Wall-clock ms of one call of f with the device synchronized around it.
template <typename F>
double wall_ms(F&& f) {
  cudaDeviceSynchronize();
  const auto t0 = std::chrono::steady_clock::now();
  f();
  cudaDeviceSynchronize();
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

// One warm-up call (cuBLASLt algorithms, pool memory), then the median of `iters` calls.
// The timed calls are a profiler capture range (cudaProfilerStart/Stop): what
// bench/gpu/trace and `nsys --capture-range=cudaProfilerApi` record.
template <typename F>
double median_wall_ms(F&& f, std::int64_t iters) {
  wall_ms(f);
  std::vector<double> ms;
  cudaProfilerStart();
  for (std::int64_t i = 0; i < iters; ++i) ms.push_back(wall_ms(f));
  cudaProfilerStop();
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

}  // namespace crucible::bench
