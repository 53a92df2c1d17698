// core/fp8_tensor.h: block-scaled FP8 tensors that carry their scales.
//
// The DeepSeek-V3 recipe (reference/deepseek_v3_fp8.md §4): activations are
// quantized per 1x128 tile (one scale per row per 128 columns), weights per
// 128x128 block. A scale here is the *dequantization* multiplier, like DeepSeek's
// `weight_scale_inv`: x ~= fp8_to_f32(q) * scale, with scale = amax / fp8_max
// computed in FP32 over the tile or block. The last tile/block of a row or column
// may be partial (dims need not be multiples of 128).
//
// Layouts of `scale` (FP32, row-major):
//   Tile1x128    q [rows, cols] -> scale [rows, ceil(cols / 128)]
//   Block128x128 q [rows, cols] -> scale [ceil(rows / 128), ceil(cols / 128)]
// Higher-rank inputs are treated as [prod(leading dims), last dim].
#pragma once

#include "core/tensor.h"

namespace crucible {

enum class ScaleLayout : std::uint8_t { Tile1x128, Block128x128 };

inline constexpr std::int64_t kFp8BlockSize = 128;

struct Fp8Options {
  DType format = DType::E4M3;  // E4M3 or E5M2
  // Round each scale up to a power of two (the UE8M0 scales of DeepSeek-V3.1 and
  // of the MX formats). Off by default: FP32 scales as in V3.
  bool pow2_scales = false;
};

struct Fp8Tensor {
  Tensor q;      // [rows, cols] in `format`
  Tensor scale;  // FP32, shape per layout (see above)
  ScaleLayout layout = ScaleLayout::Tile1x128;

  DType format() const { return q.dtype(); }
  std::int64_t rows() const { return q.dim(0); }
  std::int64_t cols() const { return q.dim(1); }
};

// Shape of the scale tensor for a [rows, cols] matrix in the given layout.
Shape fp8_scale_shape(std::int64_t rows, std::int64_t cols, ScaleLayout layout);

// Quantizes an FP32 CPU tensor (any rank >= 1; flattened to 2-D as described above).
// The scale of an all-zero tile is 1 (its codes are all zero); NaN inputs stay
// NaN codes and are ignored by amax; +-inf saturates.
Fp8Tensor quantize_fp8(const Tensor& x, ScaleLayout layout, Fp8Options opts = {});

// Quantizes x^T (x is [rows, cols]; the result describes [cols, rows]) without
// materializing the transpose in FP32: Wgrad needs activations and gradients
// tiled along the token dimension.
Fp8Tensor quantize_fp8_transposed(const Tensor& x, ScaleLayout layout, Fp8Options opts = {});

// Dequantizes back to an FP32 CPU tensor of q's shape.
Tensor dequantize_fp8(const Fp8Tensor& x);

// Rebuilds an Fp8Tensor from stored parts (an FP8 checkpoint's weight and its
// weight_scale_inv), checking that the scale shape fits the layout.
Fp8Tensor make_fp8_tensor(Tensor q, Tensor scale, ScaleLayout layout);

}  // namespace crucible
