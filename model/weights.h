// model/weights.h: a model's parameters and gradients as flat arenas with the
// Hugging Face names (STYLE.md principles 2, 3).
//
// The Layout comes from parameter_table(), so parameter i has the same offset in
// the parameter arena, the gradient arena and (later) the optimizer moments; an
// all-reduce or a checkpoint is one call on a flat buffer. Weights are FP32 masters;
// lower precisions are applied inside the ops (kernels/linear.h).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "core/arena.h"
#include "core/rng.h"
#include "model/model_config.h"

namespace crucible {

class ModelWeights {
 public:
  ModelWeights(const ModelConfig& config, Device device, bool with_grads = true);

  const ModelConfig& config() const { return config_; }
  Device device() const { return params_.view(0).device(); }
  // The same parameters on `device` (gradients, if asked for, zero).
  std::unique_ptr<ModelWeights> copy_to(Device device, bool with_grads) const;
  const Layout& layout() const { return params_.layout(); }
  Tensor param(std::string_view name) const { return params_.view(name); }
  Tensor grad(std::string_view name) const { return grads_.view(name); }
  bool has(std::string_view name) const { return params_.layout().contains(name); }
  Arena& params() { return params_; }
  Arena& grads() { return grads_; }
  const Arena& params() const { return params_; }
  bool has_grads() const { return grads_.bytes() > 0; }
  void zero_grads() { grads_.zero(); }
  // Makes the parameter and gradient arenas hold at least `bytes` (ZeRO-1 pads the
  // flat buffers to world equal blocks, dist/shard.h). When they are too small they
  // are re-allocated: parameters keep their values, gradients and padding become
  // zero, and views taken earlier keep the old storage (take views after this).
  void reserve_flat(std::size_t bytes);

  // Deterministic initialization: linear weights ~ N(0, initializer_range), norms 1,
  // biases and the router correction bias 0. Each tensor draws from its own Philox
  // stream (index in the table), so the result does not depend on the order of calls.
  void init_random(std::uint64_t seed);

 private:
  ModelConfig config_;
  Arena params_;
  Arena grads_;
};

Layout make_param_layout(const ModelConfig& config);

}  // namespace crucible
