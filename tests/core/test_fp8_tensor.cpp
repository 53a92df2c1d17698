// tests/core/test_fp8_tensor.cpp: block-scaled FP8 quantization (core/fp8_tensor.h).
//
// On random inputs (fixed seeds) of shapes with partial tiles, for both layouts and
// both formats: the scale of every tile equals amax / fp8_max computed here, the tile's
// max-|x| element lands exactly on +-fp8_max, every element's round-trip error is within
// half an FP8 ulp (times the scale) of its own magnitude, and the transposed quantizer
// equals quantizing an explicit transpose bit for bit.
// Reference: DeepSeek-V3 report §3.3.2; reference/deepseek_v3_fp8.md §4-5.
#include "core/fp8_tensor.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/numerics.h"
#include "tests/catch.h"

namespace {

using namespace crucible;

// [rows, cols] test shapes: partial tiles along both dims, exact 128s, tiny.
struct MatShape {
  std::int64_t rows, cols;
};
const MatShape kShapes[] = {{3, 300}, {257, 130}, {128, 128}, {1, 7}};

const ScaleLayout kLayouts[] = {ScaleLayout::Tile1x128, ScaleLayout::Block128x128};
const DType kFormats[] = {DType::E4M3, DType::E5M2};

const char* layout_name(ScaleLayout l) { return l == ScaleLayout::Tile1x128 ? "1x128" : "128x128"; }

std::int64_t tile_h(ScaleLayout l) { return l == ScaleLayout::Tile1x128 ? 1 : 128; }

// Gaussian values whose magnitude varies by row and column band (so tiles get very
// different scales: 2^-20 .. 2^20), with a few exact zeros.
Tensor random_matrix(std::int64_t rows, std::int64_t cols, std::uint32_t seed) {
  Tensor x(Shape{rows, cols}, DType::F32, Device::cpu(), "x");
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_int_distribution<int> band_exp(-20, 20);
  std::vector<int> col_band(static_cast<std::size_t>(cols / 64 + 1));
  for (int& e : col_band) e = band_exp(rng);
  float* p = x.data<float>();
  for (std::int64_t r = 0; r < rows; ++r) {
    const int row_exp = band_exp(rng) / 4;
    for (std::int64_t c = 0; c < cols; ++c) {
      const float v = normal(rng);
      const int e = col_band[static_cast<std::size_t>(c / 64)] + row_exp;
      p[r * cols + c] = (rng() % 97 == 0) ? 0.0f : std::ldexp(v, e);
    }
  }
  return x;
}

Tensor transpose(const Tensor& x) {
  const std::int64_t rows = x.dim(0), cols = x.dim(1);
  Tensor t(Shape{cols, rows}, DType::F32);
  const float* src = x.data<float>();
  float* dst = t.data<float>();
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t c = 0; c < cols; ++c) dst[c * rows + r] = src[r * cols + c];
  return t;
}

bool is_pow2(float s) {
  int e = 0;
  return s > 0.0f && std::frexp(s, &e) == 0.5f;
}

// Half the FP8 spacing at magnitude |y| (y = x / scale): 2^(floor(log2|y|) - M - 1)
// for normals, half the subnormal step below the smallest normal.
double half_ulp(float y, DType format) {
  const int mant_bits = format == DType::E4M3 ? 3 : 2;
  const int min_exp = format == DType::E4M3 ? -6 : -14;
  const float a = std::fabs(y);
  const int e = a == 0.0f ? min_exp : std::max(std::ilogb(a), min_exp);
  return std::ldexp(1.0, e - mant_bits - 1);
}

// Checks one quantized matrix against x [rows, cols] element by element and tile by
// tile. Returns the number of failures (each one is reported).
int check_quantized(const Tensor& x, const Fp8Tensor& qx, ScaleLayout layout, DType format,
                    bool pow2) {
  const std::int64_t rows = x.dim(0), cols = x.dim(1);
  const std::int64_t th = tile_h(layout);
  const std::int64_t tiles_r = (rows + th - 1) / th, tiles_c = (cols + 127) / 128;
  REQUIRE(qx.q.shape() == Shape{rows, cols});
  REQUIRE(qx.q.dtype() == format);
  REQUIRE(qx.scale.shape() == Shape{tiles_r, tiles_c});
  REQUIRE(qx.scale.dtype() == DType::F32);
  REQUIRE(qx.layout == layout);
  const Tensor deq = dequantize_fp8(qx);
  REQUIRE(deq.shape() == Shape{rows, cols});

  const float* xp = x.data<float>();
  const std::uint8_t* q = qx.q.data<std::uint8_t>();
  const float* sp = qx.scale.data<float>();
  const float* dp = deq.data<float>();
  const float fmax = fp8_max(format);
  int failures = 0;
  const auto fail = [&](auto&&... parts) {
    ++failures;
    std::ostringstream os;
    (os << ... << parts);
    UNSCOPED_INFO(os.str());
  };
  for (std::int64_t tr = 0; tr < tiles_r; ++tr) {
    for (std::int64_t tc = 0; tc < tiles_c; ++tc) {
      const std::int64_t r0 = tr * th, r1 = std::min(r0 + th, rows);
      const std::int64_t c0 = tc * 128, c1 = std::min(c0 + 128, cols);
      float amax = 0.0f;
      std::int64_t arg = -1;
      for (std::int64_t r = r0; r < r1; ++r)
        for (std::int64_t c = c0; c < c1; ++c)
          if (std::isfinite(xp[r * cols + c]) && std::fabs(xp[r * cols + c]) > amax) {
            amax = std::fabs(xp[r * cols + c]);
            arg = r * cols + c;
          }
      const float s = sp[tr * tiles_c + tc];
      const float exact = amax == 0.0f ? 1.0f : amax / fmax;
      if (pow2) {
        if (!is_pow2(s) || s < exact || (amax > 0.0f && s >= 2.0f * exact))
          fail("tile (", tr, ", ", tc, "): pow2 scale ", s, " for amax/max ", exact);
      } else if (!(s == exact)) {
        fail("tile (", tr, ", ", tc, "): scale ", s, " != amax/max ", exact);
      }
      // The tile's largest element maps onto +-fp8_max (unless pow2 scales lift it off).
      if (arg >= 0 && !pow2 && fp8_to_f32(q[arg], format) != std::copysign(fmax, xp[arg]))
        fail("tile (", tr, ", ", tc, "): amax element ", xp[arg], " -> ",
             fp8_to_f32(q[arg], format));
      for (std::int64_t r = r0; r < r1; ++r) {
        for (std::int64_t c = c0; c < c1; ++c) {
          const std::int64_t i = r * cols + c;
          const float xv = xp[i];
          if (std::isnan(xv)) {
            if (!std::isnan(dp[i])) fail("(", r, ", ", c, "): NaN -> ", dp[i]);
            continue;
          }
          if (std::isinf(xv)) {  // saturates
            if (dp[i] != std::copysign(fmax, xv) * s) fail("(", r, ", ", c, "): inf -> ", dp[i]);
            continue;
          }
          // The code is the nearest FP8 value to x / scale...
          const float y = xv / s;
          if (q[i] != f32_to_fp8(y, format, true)) fail("(", r, ", ", c, "): code mismatch");
          // ...so the error is at most half an FP8 ulp at |y|, times the scale. The
          // 2^-22 |x| term covers the two FP32 roundings (x / s and code * s).
          const double err = std::fabs(static_cast<double>(dp[i]) - xv);
          const double bound = half_ulp(y, format) * s + std::ldexp(std::fabs(xv), -22);
          if (!(err <= bound))
            fail("(", r, ", ", c, "): x ", xv, " deq ", dp[i], " err ", err, " > bound ", bound);
          if (dp[i] != fp8_to_f32(q[i], format) * s) fail("(", r, ", ", c, "): dequant mismatch");
          if (std::signbit(dp[i]) != std::signbit(xv) && dp[i] != 0.0f)
            fail("(", r, ", ", c, "): sign flip");
        }
      }
    }
  }
  return failures;
}

bool same_bytes(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.dtype() == b.dtype() &&
         std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}

// The crucible::Error message of f ("" when nothing was thrown).
template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const crucible::Error& e) {
    return e.what();
  }
  return "";
}

TEST_CASE("fp8_scale_shape per layout", "[fp8]") {
  CHECK(fp8_scale_shape(3, 300, ScaleLayout::Tile1x128) == Shape{3, 3});
  CHECK(fp8_scale_shape(3, 300, ScaleLayout::Block128x128) == Shape{1, 3});
  CHECK(fp8_scale_shape(257, 130, ScaleLayout::Block128x128) == Shape{3, 2});
  CHECK(fp8_scale_shape(128, 128, ScaleLayout::Block128x128) == Shape{1, 1});
  CHECK(fp8_scale_shape(576, 7168, ScaleLayout::Block128x128) == Shape{5, 56});  // kv_a_proj
  CHECK(fp8_scale_shape(0, 5, ScaleLayout::Tile1x128) == Shape{0, 1});
}

TEST_CASE("quantize_fp8 on random inputs: scales, amax mapping, error bound", "[fp8]") {
  std::uint32_t seed = 1;
  for (const MatShape& sh : kShapes) {
    const Tensor x = random_matrix(sh.rows, sh.cols, seed++);
    for (ScaleLayout layout : kLayouts) {
      for (DType format : kFormats) {
        for (bool pow2 : {false, true}) {
          INFO("shape [" << sh.rows << ", " << sh.cols << "] " << layout_name(layout) << " "
                         << dtype_name(format) << (pow2 ? " pow2" : ""));
          const Fp8Tensor qx = quantize_fp8(x, layout, {format, pow2});
          CHECK(check_quantized(x, qx, layout, format, pow2) == 0);
        }
      }
    }
  }
}

TEST_CASE("quantize_fp8_transposed equals quantizing an explicit transpose", "[fp8]") {
  std::uint32_t seed = 100;
  for (const MatShape& sh : kShapes) {
    const Tensor x = random_matrix(sh.rows, sh.cols, seed++);
    const Tensor xt = transpose(x);
    for (ScaleLayout layout : kLayouts) {
      for (DType format : kFormats) {
        INFO("shape [" << sh.rows << ", " << sh.cols << "] " << layout_name(layout) << " "
                       << dtype_name(format));
        const Fp8Tensor a = quantize_fp8_transposed(x, layout, {format, false});
        const Fp8Tensor b = quantize_fp8(xt, layout, {format, false});
        CHECK(a.q.shape() == Shape{sh.cols, sh.rows});
        CHECK(a.rows() == sh.cols);
        CHECK(a.cols() == sh.rows);
        CHECK(same_bytes(a.q, b.q));
        CHECK(same_bytes(a.scale, b.scale));
        CHECK(check_quantized(xt, a, layout, format, false) == 0);
      }
    }
  }
}

TEST_CASE("a hand-computed 1x128 example", "[fp8]") {
  Tensor x(Shape{2, 3}, DType::F32);
  float* p = x.data<float>();
  const float v[] = {1.0f, -2.0f, 4.0f, 0.5f, 0.25f, -0.125f};
  std::copy(v, v + 6, p);
  const Fp8Tensor qx = quantize_fp8(x, ScaleLayout::Tile1x128);
  const float* s = qx.scale.data<float>();
  CHECK(s[0] == 4.0f / 448.0f);
  CHECK(s[1] == 0.5f / 448.0f);
  const std::uint8_t* q = qx.q.data<std::uint8_t>();
  // Row 0: 1, -2, 4 over 4/448 -> 112, -224, 448 (all exact in E4M3).
  CHECK(q[0] == f32_to_e4m3(112.0f));
  CHECK(q[1] == f32_to_e4m3(-224.0f));
  CHECK(q[2] == 0x7E);
  CHECK(q[3] == 0x7E);
  CHECK(e4m3_to_f32(q[4]) == 224.0f);
  CHECK(e4m3_to_f32(q[5]) == -112.0f);
  // pow2: 4/448 rounds up to 2^-6 and 0.5/448 to 2^-9; 4 / 2^-6 = 256.
  const Fp8Tensor p2 = quantize_fp8(x, ScaleLayout::Tile1x128, {DType::E4M3, true});
  CHECK(p2.scale.data<float>()[0] == 0x1p-6f);
  CHECK(p2.scale.data<float>()[1] == 0x1p-9f);
  CHECK(e4m3_to_f32(p2.q.data<std::uint8_t>()[2]) == 256.0f);
  // Round trip is exact here for both.
  for (const Fp8Tensor* t : {&qx, &p2}) {
    const Tensor d = dequantize_fp8(*t);
    for (int i = 0; i < 6; ++i) CHECK(d.data<float>()[i] == Approx(v[i]).epsilon(1e-6));
  }
}

TEST_CASE("codes come from x / scale, not x * (1 / scale)", "[fp8]") {
  // Near FP8 midpoints the rounded reciprocal can flip a code: find such x for the
  // scale of a tile whose amax is 3, then check the quantizer divides.
  const float s = 3.0f / 448.0f, inv = 1.0f / s;
  std::vector<float> xs = {3.0f};
  for (int c = 0; c < 0x7E && xs.size() < 128; ++c) {
    const float mid = 0.5f * (e4m3_to_f32(static_cast<std::uint8_t>(c)) +
                              e4m3_to_f32(static_cast<std::uint8_t>(c + 1)));
    float x = mid * s;
    for (int k = 0; k < 8; ++k) x = std::nextafter(x, 0.0f);
    for (int k = 0; k < 16 && xs.size() < 128; ++k, x = std::nextafter(x, 4.0f))
      if (f32_to_e4m3(x / s) != f32_to_e4m3(x * inv)) xs.push_back(x);
  }
  REQUIRE(xs.size() > 10);
  Tensor t(Shape{1, static_cast<std::int64_t>(xs.size())}, DType::F32);
  std::copy(xs.begin(), xs.end(), t.data<float>());
  const Fp8Tensor qt = quantize_fp8(t, ScaleLayout::Tile1x128);
  REQUIRE(qt.scale.data<float>()[0] == s);
  int wrong = 0;
  for (std::size_t i = 0; i < xs.size(); ++i)
    wrong += qt.q.data<std::uint8_t>()[i] != f32_to_e4m3(xs[i] / s);
  CHECK(wrong == 0);
}

TEST_CASE("zero tiles, NaN and inf inputs", "[fp8]") {
  for (ScaleLayout layout : kLayouts) {
    INFO(layout_name(layout));
    // [2, 300]: tile 0 of row 0 and everything in row 1 zero except one NaN.
    Tensor x(Shape{2, 300}, DType::F32, Device::cpu(), "act");
    float* p = x.data<float>();
    p[130] = 3.0f;                 // row 0, tile 1
    p[131] = -std::numeric_limits<float>::infinity();
    p[132] = 1.5f;
    p[300 + 5] = std::numeric_limits<float>::quiet_NaN();  // row 1, tile 0
    p[300 + 260] = -0.0f;
    const Fp8Tensor qx = quantize_fp8(x, layout);
    CHECK(qx.q.name() == "act.q");
    CHECK(qx.scale.name() == "act.scale");
    const float* s = qx.scale.data<float>();
    if (layout == ScaleLayout::Tile1x128) {
      CHECK(s[0] == 1.0f);  // all-zero tile
      CHECK(s[1] == 3.0f / 448.0f);
      CHECK(s[2] == 1.0f);
      CHECK(s[3] == 1.0f);  // only a NaN: ignored by amax
      CHECK(s[5] == 1.0f);
    } else {
      CHECK(s[0] == 1.0f);
      CHECK(s[1] == 3.0f / 448.0f);
      CHECK(s[2] == 1.0f);
    }
    const std::uint8_t* q = qx.q.data<std::uint8_t>();
    CHECK(q[0] == 0x00);
    CHECK(q[131] == 0xFE);  // -inf saturates to -448
    CHECK(q[300 + 5] == 0x7F);
    CHECK(q[300 + 260] == 0x80);  // -0 stays -0
    const Tensor d = dequantize_fp8(qx);
    CHECK(std::isnan(d.data<float>()[300 + 5]));
    CHECK(d.data<float>()[130] == 448.0f * s[1]);
    CHECK(d.data<float>()[131] == -448.0f * (3.0f / 448.0f));
    CHECK(std::signbit(d.data<float>()[300 + 260]));
    CHECK(check_quantized(x, qx, layout, DType::E4M3, false) == 0);
  }
}

TEST_CASE("higher ranks flatten to [prod(leading), last]", "[fp8]") {
  Tensor x3(Shape{2, 3, 130}, DType::F32);
  const Tensor x2 = random_matrix(6, 130, 77);
  x3.copy_from(x2.reshape(Shape{2, 3, 130}));
  const Fp8Tensor a = quantize_fp8(x3, ScaleLayout::Tile1x128);
  const Fp8Tensor b = quantize_fp8(x2, ScaleLayout::Tile1x128);
  CHECK(a.q.shape() == Shape{6, 130});
  CHECK(same_bytes(a.q, b.q));
  CHECK(same_bytes(a.scale, b.scale));

  Tensor x1(Shape{7}, DType::F32);
  for (int i = 0; i < 7; ++i) x1.data<float>()[i] = static_cast<float>(i) - 3.0f;
  const Fp8Tensor c = quantize_fp8(x1, ScaleLayout::Block128x128, {DType::E5M2, false});
  CHECK(c.q.shape() == Shape{1, 7});
  CHECK(c.scale.shape() == Shape{1, 1});
  CHECK(c.scale.data<float>()[0] == 3.0f / 57344.0f);
  CHECK(e5m2_to_f32(c.q.data<std::uint8_t>()[0]) == -57344.0f);
}

TEST_CASE("make_fp8_tensor checks the stored parts", "[fp8]") {
  const Tensor x = random_matrix(257, 130, 5);
  const Fp8Tensor qx = quantize_fp8(x, ScaleLayout::Block128x128);
  const Fp8Tensor re = make_fp8_tensor(qx.q.clone(), qx.scale.clone(), ScaleLayout::Block128x128);
  CHECK(re.format() == DType::E4M3);
  CHECK(same_bytes(dequantize_fp8(re), dequantize_fp8(qx)));

  Tensor w = qx.q.clone();
  w.set_name("layers.0.mlp.down_proj.weight");
  Tensor bad_scale(Shape{2, 2}, DType::F32, Device::cpu(),
                   "layers.0.mlp.down_proj.weight_scale_inv");
  const std::string msg =
      error_of([&] { make_fp8_tensor(w, bad_scale, ScaleLayout::Block128x128); });
  CHECK(msg.find("has shape [2, 2]") != std::string::npos);
  CHECK(msg.find("needs [3, 2]") != std::string::npos);
  CHECK(msg.find("layers.0.mlp.down_proj.weight_scale_inv") != std::string::npos);
  // 1x128 tiles need one scale per row.
  CHECK_THROWS_AS(make_fp8_tensor(w, qx.scale, ScaleLayout::Tile1x128), crucible::Error);
  CHECK_THROWS_AS(make_fp8_tensor(Tensor(Shape{257, 130}, DType::U8), qx.scale,
                                  ScaleLayout::Block128x128),
                  crucible::Error);
  CHECK_THROWS_AS(make_fp8_tensor(w, Tensor(Shape{3, 2}, DType::F64), ScaleLayout::Block128x128),
                  crucible::Error);
  CHECK_THROWS_AS(make_fp8_tensor(Tensor(Shape{257 * 130}, DType::E4M3), qx.scale,
                                  ScaleLayout::Block128x128),
                  crucible::Error);
}

TEST_CASE("quantize and dequantize reject bad arguments", "[fp8]") {
  const Tensor f64(Shape{2, 4}, DType::F64);
  CHECK(error_of([&] { quantize_fp8(f64, ScaleLayout::Tile1x128); }).find("must be f32") !=
        std::string::npos);
  CHECK_THROWS_AS(quantize_fp8_transposed(f64, ScaleLayout::Tile1x128), crucible::Error);
  const Tensor scalar(Shape{}, DType::F32);
  CHECK(error_of([&] { quantize_fp8(scalar, ScaleLayout::Tile1x128); }).find("rank >= 1") !=
        std::string::npos);
  const Tensor x(Shape{2, 4}, DType::F32);
  CHECK_THROWS_AS(quantize_fp8(x, ScaleLayout::Tile1x128, {DType::BF16, false}), crucible::Error);
  CHECK_THROWS_AS(quantize_fp8(Tensor(), ScaleLayout::Tile1x128), crucible::Error);
  Fp8Tensor bad = quantize_fp8(x, ScaleLayout::Tile1x128);
  bad.layout = ScaleLayout::Block128x128;  // scale [2, 1] no longer fits
  CHECK_THROWS_AS(dequantize_fp8(bad), crucible::Error);
}

}  // namespace
