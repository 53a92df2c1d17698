// core/fp8_tensor.cpp: block-scaled FP8 quantize / dequantize (the CPU reference).
//
// Invariant: for every tile or block, scale = amax / fp8_max in FP32 (amax over the
// finite elements; 1 when no finite element is non-zero), q = f32_to_fp8(x / scale) with
// saturation, and x ~= fp8_to_f32(q) * scale. The transposed quantizer reads x with
// swapped strides and does the very same arithmetic, so it equals quantizing an
// explicit transpose bit for bit.
// Reference: DeepSeek-V3 technical report §3.3.2 (1x128 activation tiles, 128x128
// weight blocks, online max-abs scaling); reference/deepseek_v3_fp8.md §4-5.
#include "core/fp8_tensor.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <utility>

#include "core/numerics.h"

namespace crucible {
namespace {

std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return (a + b - 1) / b; }

// A [rows, cols] matrix view of FP32 host memory with element (r, c) at
// data[r * row_stride + c * col_stride]: x itself, or x^T by swapping the strides.
struct MatrixView {
  const float* data;
  std::int64_t rows, cols;
  std::int64_t row_stride, col_stride;
  float at(std::int64_t r, std::int64_t c) const { return data[r * row_stride + c * col_stride]; }
};

// The tile or block extent along rows for a layout (columns are always 128 wide).
std::int64_t tile_rows(ScaleLayout layout) {
  return layout == ScaleLayout::Tile1x128 ? 1 : kFp8BlockSize;
}

bool is_fp8(DType t) { return t == DType::E4M3 || t == DType::E5M2; }

// Smallest power of two >= s (s > 0, finite). frexp gives s = m * 2^e, m in [0.5, 1):
// s is already a power of two exactly when m == 0.5. Exact for subnormal s too.
float round_up_pow2(float s) {
  int e = 0;
  const float m = std::frexp(s, &e);
  return m == 0.5f ? s : std::ldexp(1.0f, e);
}

// The dequantization multiplier of one tile from its finite amax.
float scale_from_amax(float amax, const Fp8Options& opts) {
  // All-zero (or all NaN/inf) tile: any scale gives zero codes; 1 keeps it harmless.
  if (amax == 0.0f) return 1.0f;
  float scale = amax / fp8_max(opts.format);
  // NOTE: for amax below fp8_max * 2^-126 (~5e-36 for E4M3) the scale is an FP32
  // subnormal with fewer significant bits, and the amax element may land a code or
  // more below fp8_max. Still exact as a definition; only the FP8 range is underused.
  // amax below fp8_max * 2^-150 underflows the FP32 scale to 0, and x / 0 would turn
  // zeros into NaN: the smallest positive float keeps every x / scale below fp8_max.
  if (scale == 0.0f) scale = std::numeric_limits<float>::denorm_min();
  return opts.pow2_scales ? round_up_pow2(scale) : scale;
}

// Quantizes the view into q [rows, cols] (codes, row-major) and scale (layout shape).
void quantize_view(const MatrixView& x, ScaleLayout layout, const Fp8Options& opts,
                   std::uint8_t* q, float* scale) {
  const std::int64_t th = tile_rows(layout);
  const std::int64_t tiles_c = ceil_div(x.cols, kFp8BlockSize);
  for (std::int64_t r0 = 0; r0 < x.rows; r0 += th) {
    const std::int64_t r1 = std::min(r0 + th, x.rows);
    for (std::int64_t c0 = 0; c0 < x.cols; c0 += kFp8BlockSize) {
      const std::int64_t c1 = std::min(c0 + kFp8BlockSize, x.cols);
      // amax over finite values: NaN fails the comparison, inf is skipped (it saturates).
      float amax = 0.0f;
      for (std::int64_t r = r0; r < r1; ++r)
        for (std::int64_t c = c0; c < c1; ++c) {
          const float a = std::fabs(x.at(r, c));
          if (std::isfinite(a) && a > amax) amax = a;
        }
      const float s = scale_from_amax(amax, opts);
      scale[(r0 / th) * tiles_c + c0 / kFp8BlockSize] = s;
      // Divide (not multiply by 1/s): x / s is the definition, and a rounded reciprocal
      // could move the amax element above fp8_max or change a code by one.
      for (std::int64_t r = r0; r < r1; ++r)
        for (std::int64_t c = c0; c < c1; ++c)
          q[r * x.cols + c] = f32_to_fp8(x.at(r, c) / s, opts.format, /*saturate=*/true);
    }
  }
}

// Checks a quantizer input and returns its [rows, cols] flattening.
std::pair<std::int64_t, std::int64_t> matrix_dims(const Tensor& x, const char* what) {
  CRUCIBLE_CHECK(x.defined(), what, ": input tensor is undefined");
  CRUCIBLE_CHECK(x.dtype() == DType::F32, what, ": input '", x.name(), "' must be f32, got ",
                 dtype_name(x.dtype()));
  CRUCIBLE_CHECK(x.device().is_cpu(), what, ": input '", x.name(), "' must be on the cpu, got ",
                 x.device().str());
  CRUCIBLE_CHECK(x.rank() >= 1, what, ": input '", x.name(), "' must have rank >= 1, got ",
                 x.shape().str());
  std::int64_t rows = 1;
  for (int i = 0; i + 1 < x.rank(); ++i) rows *= x.dim(i);
  return {rows, x.dim(-1)};
}

void check_format(const Fp8Options& opts, const char* what) {
  CRUCIBLE_CHECK(is_fp8(opts.format), what, ": format must be e4m3 or e5m2, got ",
                 dtype_name(opts.format));
}

std::string part_name(const Tensor& x, const char* suffix) {
  return x.name().empty() ? std::string() : x.name() + suffix;
}

Fp8Tensor quantize_impl(const Tensor& x, const MatrixView& view, ScaleLayout layout,
                        const Fp8Options& opts) {
  Fp8Tensor out;
  out.layout = layout;
  out.q = Tensor(Shape{view.rows, view.cols}, opts.format, Device::cpu(), part_name(x, ".q"));
  out.scale = Tensor(fp8_scale_shape(view.rows, view.cols, layout), DType::F32, Device::cpu(),
                     part_name(x, ".scale"));
  quantize_view(view, layout, opts, out.q.data<std::uint8_t>(), out.scale.data<float>());
  return out;
}

}  // namespace

Shape fp8_scale_shape(std::int64_t rows, std::int64_t cols, ScaleLayout layout) {
  CRUCIBLE_CHECK(rows >= 0 && cols >= 0, "fp8_scale_shape: negative dims [", rows, ", ", cols,
                 "]");
  return Shape{ceil_div(rows, tile_rows(layout)), ceil_div(cols, kFp8BlockSize)};
}

Fp8Tensor quantize_fp8(const Tensor& x, ScaleLayout layout, Fp8Options opts) {
  check_format(opts, "quantize_fp8");
  const auto [rows, cols] = matrix_dims(x, "quantize_fp8");
  const MatrixView view{x.data<float>(), rows, cols, /*row_stride=*/cols, /*col_stride=*/1};
  return quantize_impl(x, view, layout, opts);  // q [rows, cols]
}

Fp8Tensor quantize_fp8_transposed(const Tensor& x, ScaleLayout layout, Fp8Options opts) {
  check_format(opts, "quantize_fp8_transposed");
  const auto [rows, cols] = matrix_dims(x, "quantize_fp8_transposed");
  // x^T [cols, rows]: element (c, r) of the view is x[r, c].
  const MatrixView view{x.data<float>(), cols, rows, /*row_stride=*/1, /*col_stride=*/cols};
  return quantize_impl(x, view, layout, opts);  // q [cols, rows]
}

Tensor dequantize_fp8(const Fp8Tensor& x) {
  CRUCIBLE_CHECK(x.q.defined() && x.scale.defined(), "dequantize_fp8: undefined q or scale");
  CRUCIBLE_CHECK(is_fp8(x.q.dtype()), "dequantize_fp8: q '", x.q.name(),
                 "' must be e4m3 or e5m2, got ", dtype_name(x.q.dtype()));
  CRUCIBLE_CHECK(x.scale.dtype() == DType::F32, "dequantize_fp8: scale must be f32, got ",
                 dtype_name(x.scale.dtype()));
  CRUCIBLE_CHECK(x.q.device().is_cpu() && x.scale.device().is_cpu(),
                 "dequantize_fp8: q and scale must be on the cpu, got ", x.q.device().str(),
                 " and ", x.scale.device().str());
  CRUCIBLE_CHECK(x.q.rank() == 2, "dequantize_fp8: q must be [rows, cols], got ",
                 x.q.shape().str());
  const std::int64_t rows = x.rows(), cols = x.cols();
  const Shape want = fp8_scale_shape(rows, cols, x.layout);
  CRUCIBLE_CHECK(x.scale.shape() == want, "dequantize_fp8: scale shape ", x.scale.shape().str(),
                 " does not fit q ", x.q.shape().str(), " (want ", want.str(), ")");

  Tensor out(x.q.shape(), DType::F32, Device::cpu(), x.q.name());  // [rows, cols]
  const std::uint8_t* q = x.q.data<std::uint8_t>();
  const float* scale = x.scale.data<float>();
  float* y = out.data<float>();
  const std::int64_t th = tile_rows(x.layout);
  const std::int64_t tiles_c = want[1];
  const DType format = x.format();
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* scale_row = scale + (r / th) * tiles_c;
    for (std::int64_t c = 0; c < cols; ++c)
      y[r * cols + c] = fp8_to_f32(q[r * cols + c], format) * scale_row[c / kFp8BlockSize];
  }
  return out;
}

Fp8Tensor make_fp8_tensor(Tensor q, Tensor scale, ScaleLayout layout) {
  // These parts come from checkpoints, so the messages speak to the user.
  CRUCIBLE_USER_CHECK(q.defined() && scale.defined(),
                      "make_fp8_tensor: the quantized tensor or its scale is missing");
  CRUCIBLE_USER_CHECK(is_fp8(q.dtype()), "make_fp8_tensor: '", q.name(),
                      "' must be e4m3 or e5m2 (float8_e4m3fn / float8_e5m2), got ",
                      dtype_name(q.dtype()));
  CRUCIBLE_USER_CHECK(q.rank() == 2, "make_fp8_tensor: '", q.name(),
                      "' must be a matrix [rows, cols], got shape ", q.shape().str());
  CRUCIBLE_USER_CHECK(scale.dtype() == DType::F32, "make_fp8_tensor: scale '", scale.name(),
                      "' of '", q.name(), "' must be f32, got ", dtype_name(scale.dtype()));
  CRUCIBLE_USER_CHECK(q.device() == scale.device(), "make_fp8_tensor: '", q.name(), "' is on ",
                      q.device().str(), " but its scale '", scale.name(), "' is on ",
                      scale.device().str(), "; load both to the same device");
  const Shape want = fp8_scale_shape(q.dim(0), q.dim(1), layout);
  CRUCIBLE_USER_CHECK(scale.shape() == want, "make_fp8_tensor: scale '", scale.name(),
                      "' has shape ", scale.shape().str(), " but '", q.name(), "' ",
                      q.shape().str(), " needs ", want.str(), " for ",
                      layout == ScaleLayout::Tile1x128 ? "1x128 tiles" : "128x128 blocks",
                      " (one scale per ceil(dim / 128))");
  Fp8Tensor out;
  out.q = std::move(q);
  out.scale = std::move(scale);
  out.layout = layout;
  return out;
}

}  // namespace crucible
