// model/rope.cpp: RoPE inverse frequencies (default, linear, llama3, yarn) and tables.
#include "model/rope.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace crucible {

namespace {
constexpr double kPi = 3.14159265358979323846;

// YaRN helpers (Peng et al. 2023, as in transformers' _compute_yarn_parameters).
double yarn_correction_dim(double rotations, double dim, double base, double max_pos) {
  return dim * std::log(max_pos / (rotations * 2 * kPi)) / (2 * std::log(base));
}
double yarn_mscale(double scale, double mscale) {
  return scale <= 1 ? 1.0 : 0.1 * mscale * std::log(scale) + 1.0;
}
}  // namespace

std::vector<double> rope_inv_freq(const RopeConfig& r, std::int64_t rot) {
  CRUCIBLE_CHECK(rot > 0 && rot % 2 == 0, "rotary dims must be even, got ", rot);
  const std::int64_t half = rot / 2;
  std::vector<double> inv(half);
  // transformers computes base ** (arange(0, dim, 2) / dim) in FP32; the FP32
  // exponent is kept so that tables match its rounding closely.
  for (std::int64_t i = 0; i < half; ++i) {
    const float e = static_cast<float>(2 * i) / static_cast<float>(rot);
    inv[i] = 1.0 / std::pow(r.theta, static_cast<double>(e));
  }
  switch (r.type) {
    case RopeType::Default:
      break;
    case RopeType::Linear:
      for (double& f : inv) f /= r.factor;
      break;
    case RopeType::Llama3: {
      const double old_len = static_cast<double>(r.original_max_position_embeddings);
      const double low_wavelen = old_len / r.low_freq_factor;
      const double high_wavelen = old_len / r.high_freq_factor;
      for (double& f : inv) {
        const double wavelen = 2 * kPi / f;
        if (wavelen > low_wavelen) {
          f /= r.factor;  // low frequencies: interpolate
        } else if (wavelen >= high_wavelen) {
          const double smooth = (old_len / wavelen - r.low_freq_factor) / (r.high_freq_factor - r.low_freq_factor);
          f = (1 - smooth) * f / r.factor + smooth * f;
        }  // high frequencies: unchanged
      }
      break;
    }
    case RopeType::Yarn: {
      const double dim = static_cast<double>(rot);
      const double max_pos = static_cast<double>(r.original_max_position_embeddings);
      double low = std::floor(yarn_correction_dim(r.beta_fast, dim, r.theta, max_pos));
      double high = std::ceil(yarn_correction_dim(r.beta_slow, dim, r.theta, max_pos));
      low = std::max(low, 0.0);
      high = std::min(high, dim - 1);
      if (low == high) high += 0.001;  // avoid a zero-width ramp
      for (std::int64_t i = 0; i < half; ++i) {
        const double ramp = std::clamp((static_cast<double>(i) - low) / (high - low), 0.0, 1.0);
        const double extrapolation = 1.0 - ramp;  // weight of the original frequency
        inv[i] = inv[i] / r.factor * (1 - extrapolation) + inv[i] * extrapolation;
      }
      break;
    }
  }
  return inv;
}

double rope_attention_factor(const RopeConfig& r) {
  if (r.type != RopeType::Yarn) return 1.0;
  if (r.mscale_all_dim > 0) return yarn_mscale(r.factor, r.mscale) / yarn_mscale(r.factor, r.mscale_all_dim);
  return yarn_mscale(r.factor, 1.0);
}

RopeTable make_rope_table(const ModelConfig& c, std::int64_t max_pos, Device device) {
  RopeTable t;
  t.rot = c.is_mla() ? c.qk_rope_head_dim : c.attn_head_dim();
  t.interleaved = c.is_mla();
  const auto inv = rope_inv_freq(c.rope, t.rot);
  const double attn = rope_attention_factor(c.rope);
  const std::int64_t half = t.rot / 2;
  t.cos = Tensor(Shape{max_pos, half}, DType::F32, Device::cpu(), "rope.cos");
  t.sin = Tensor(Shape{max_pos, half}, DType::F32, Device::cpu(), "rope.sin");
  float* cs = t.cos.data<float>();
  float* sn = t.sin.data<float>();
  for (std::int64_t p = 0; p < max_pos; ++p)
    for (std::int64_t i = 0; i < half; ++i) {
      // FP32 product as in transformers (freqs = pos.float() @ inv_freq.float()).
      const float angle = static_cast<float>(p) * static_cast<float>(inv[i]);
      cs[p * half + i] = static_cast<float>(std::cos(static_cast<double>(angle)) * attn);
      sn[p * half + i] = static_cast<float>(std::sin(static_cast<double>(angle)) * attn);
    }
  if (!device.is_cpu()) {
    t.cos = t.cos.to(device);
    t.sin = t.sin.to(device);
  }
  return t;
}

}  // namespace crucible
