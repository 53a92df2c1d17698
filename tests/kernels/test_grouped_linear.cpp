// tests/kernels/test_grouped_linear.cpp: the CPU grouped linear ops (kernels/grouped_linear.h)
// against the expert-by-expert loop model/moe.cpp runs today: each expert's rows copied
// into their own tensor, ops::linear_forward / ops::linear_backward on it, empty experts
// skipped. Results must agree bit for bit in Fp32, Bf16 and Fp8, including dw accumulated
// onto non-zero values, empty groups (first, middle, last, all but one), odd shapes (partial
// 128-tiles along every dimension, single rows) and weights that are non-adjacent views into
// one arena. Also: the argument checks name what is wrong.
#include "kernels/grouped_linear.h"
#include "kernels/tensor_ops.h"

#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "tests/catch.h"

namespace {

using namespace crucible;
using ops::GemmPrecision;

Tensor random_tensor(Shape shape, std::uint32_t seed, const char* name) {
  Tensor t(shape, DType::F32, Device::cpu(), name);
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (float& v : t.span<float>()) v = normal(rng);
  return t;
}

// A contiguous copy of rows [r0, r1) (what model/moe.cpp's gather_rows produces).
Tensor copy_rows(const Tensor& x, std::int64_t r0, std::int64_t r1) {
  Tensor t(Shape{r1 - r0, x.dim(1)}, DType::F32, Device::cpu(), x.name() + "_g");
  std::memcpy(t.raw(), x.slice(r0, r1).raw(), t.nbytes());
  return t;
}

bool same_bits(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}

const char* name_of(GemmPrecision p) {
  return p == GemmPrecision::Fp32 ? "fp32" : p == GemmPrecision::Bf16 ? "bf16" : "fp8";
}

struct Case {
  std::int64_t K, N;
  std::vector<std::int64_t> rows;  // rows per group
};

// Weights as views into one arena with a gap of 3 rows between groups (not adjacent).
std::vector<Tensor> arena_views(const Tensor& arena, std::int64_t G, std::int64_t N) {
  std::vector<Tensor> w;
  for (std::int64_t g = 0; g < G; ++g) w.push_back(arena.slice(g * (N + 3), g * (N + 3) + N));
  return w;
}

void check_case(const Case& c, GemmPrecision p, std::uint32_t seed) {
  const std::int64_t G = static_cast<std::int64_t>(c.rows.size());
  std::vector<std::int64_t> offsets{0};
  for (std::int64_t r : c.rows) offsets.push_back(offsets.back() + r);
  const std::int64_t M = offsets.back();
  INFO(name_of(p) << " K=" << c.K << " N=" << c.N << " G=" << G << " M=" << M);

  const Tensor x = random_tensor(Shape{M, c.K}, seed, "x");
  const Tensor dy = random_tensor(Shape{M, c.N}, seed + 1, "dy");
  const Tensor arena = random_tensor(Shape{G * (c.N + 3), c.K}, seed + 2, "w_arena");
  const std::vector<Tensor> w = arena_views(arena, G, c.N);
  std::vector<Tensor> dw, dw_ref;
  for (std::int64_t g = 0; g < G; ++g) {
    dw.push_back(random_tensor(Shape{c.N, c.K}, seed + 10 + static_cast<std::uint32_t>(g), "dw"));
    dw_ref.push_back(dw.back().clone());
  }

  Tensor y(Shape{M, c.N}, DType::F32, Device::cpu(), "y");
  ops::grouped_linear_forward(x, w, offsets, y, p);
  Tensor dx(Shape{M, c.K}, DType::F32, Device::cpu(), "dx");
  ops::grouped_linear_backward(dy, x, w, offsets, dx, dw, p);

  for (std::int64_t g = 0; g < G; ++g) {
    const std::int64_t r0 = offsets[g], r1 = offsets[g + 1];
    INFO("group " << g << " rows [" << r0 << ", " << r1 << ")");
    if (r0 == r1) {
      CHECK(same_bits(dw[g], dw_ref[g]));  // untouched
      continue;
    }
    const Tensor xe = copy_rows(x, r0, r1), dye = copy_rows(dy, r0, r1);
    const Tensor we = w[g].clone();
    Tensor ye(Shape{r1 - r0, c.N}, DType::F32, Device::cpu(), "ye");
    ops::linear_forward(xe, we, Tensor(), ye, p);
    CHECK(same_bits(ye, copy_rows(y, r0, r1)));
    Tensor dxe(Shape{r1 - r0, c.K}, DType::F32, Device::cpu(), "dxe"), none;
    ops::linear_backward(dye, xe, we, dxe, dw_ref[g], none, p);
    CHECK(same_bits(dxe, copy_rows(dx, r0, r1)));
    CHECK(same_bits(dw[g], dw_ref[g]));
  }
}

}  // namespace

TEST_CASE("grouped_linear: CPU equals the expert-by-expert linear loop bit for bit", "[kernels][grouped_linear]") {
  const Case cases[] = {
      {300, 130, {5, 0, 131, 1, 0}},        // partial tiles everywhere, empty groups in the middle and end
      {128, 256, {0, 128, 256}},            // aligned, empty first group
      {130, 257, {300, 7}},                 // several K blocks along tokens (Wgrad), odd N
      {1, 1, {1, 0, 2}},                    // tiny
      {512, 384, {0, 0, 64, 0}},            // all but one empty
  };
  std::uint32_t seed = 1;
  for (GemmPrecision p : {GemmPrecision::Fp32, GemmPrecision::Bf16, GemmPrecision::Fp8})
    for (const Case& c : cases) check_case(c, p, seed += 100);
}

TEST_CASE("grouped_linear: dx may be undefined; M = 0 is a no-op", "[kernels][grouped_linear]") {
  const Tensor x = random_tensor(Shape{9, 20}, 3, "x"), dy = random_tensor(Shape{9, 6}, 4, "dy");
  const std::vector<Tensor> w{random_tensor(Shape{6, 20}, 5, "w0"), random_tensor(Shape{6, 20}, 6, "w1")};
  std::vector<Tensor> dw{Tensor(Shape{6, 20}, DType::F32), Tensor(Shape{6, 20}, DType::F32)};
  const std::vector<std::int64_t> offsets{0, 4, 9};
  Tensor no_dx;
  ops::grouped_linear_backward(dy, x, w, offsets, no_dx, dw, GemmPrecision::Fp8);
  Tensor dw0(Shape{6, 20}, DType::F32), none;
  ops::linear_backward(copy_rows(dy, 0, 4), copy_rows(x, 0, 4), w[0], no_dx, dw0, none, GemmPrecision::Fp8);
  CHECK(same_bits(dw[0], dw0));

  const Tensor x0(Shape{0, 20}, DType::F32), dy0(Shape{0, 6}, DType::F32);
  Tensor y0(Shape{0, 6}, DType::F32), dx0(Shape{0, 20}, DType::F32);
  const std::vector<std::int64_t> zero{0, 0, 0};
  ops::grouped_linear_forward(x0, w, zero, y0, GemmPrecision::Fp8);
  ops::grouped_linear_backward(dy0, x0, w, zero, dx0, dw, GemmPrecision::Fp8);
  CHECK(same_bits(dw[0], dw0));
}

TEST_CASE("grouped_linear_pair: the single ops' results, dx summed by axpy; mismatched lists fail",
          "[kernels][grouped_linear]") {
  const Tensor x = random_tensor(Shape{9, 20}, 13, "x");
  const Tensor dy1 = random_tensor(Shape{9, 6}, 14, "dy1"), dy2 = random_tensor(Shape{9, 4}, 15, "dy2");
  const std::vector<Tensor> w1{random_tensor(Shape{6, 20}, 16, "a0"), random_tensor(Shape{6, 20}, 17, "a1")};
  const std::vector<Tensor> w2{random_tensor(Shape{4, 20}, 18, "b0"), random_tensor(Shape{4, 20}, 19, "b1")};
  const std::vector<std::int64_t> offsets{0, 4, 9};
  for (GemmPrecision p : {GemmPrecision::Fp32, GemmPrecision::Fp8}) {
    Tensor y1(Shape{9, 6}, DType::F32), y2(Shape{9, 4}, DType::F32), p1(Shape{9, 6}, DType::F32),
        p2(Shape{9, 4}, DType::F32);
    ops::grouped_linear_forward(x, w1, offsets, y1, p);
    ops::grouped_linear_forward(x, w2, offsets, y2, p);
    ops::grouped_linear_pair_forward(x, w1, w2, offsets, p1, p2, p);
    CHECK(same_bits(y1, p1));
    CHECK(same_bits(y2, p2));

    Tensor dx(Shape{9, 20}, DType::F32), dx2(Shape{9, 20}, DType::F32), pdx(Shape{9, 20}, DType::F32);
    std::vector<Tensor> dw1{Tensor(Shape{6, 20}, DType::F32), Tensor(Shape{6, 20}, DType::F32)};
    std::vector<Tensor> dw2{Tensor(Shape{4, 20}, DType::F32), Tensor(Shape{4, 20}, DType::F32)};
    std::vector<Tensor> pdw1{Tensor(Shape{6, 20}, DType::F32), Tensor(Shape{6, 20}, DType::F32)};
    std::vector<Tensor> pdw2{Tensor(Shape{4, 20}, DType::F32), Tensor(Shape{4, 20}, DType::F32)};
    ops::grouped_linear_backward(dy1, x, w1, offsets, dx, dw1, p);
    ops::grouped_linear_backward(dy2, x, w2, offsets, dx2, dw2, p);
    ops::axpy(1.0f, dx2, dx);
    ops::grouped_linear_pair_backward(dy1, dy2, x, w1, w2, offsets, pdx, pdw1, pdw2, p);
    CHECK(same_bits(dx, pdx));
    for (int g = 0; g < 2; ++g) {
      CHECK(same_bits(dw1[g], pdw1[g]));
      CHECK(same_bits(dw2[g], pdw2[g]));
    }
  }
  Tensor y1(Shape{9, 6}, DType::F32), y2(Shape{9, 4}, DType::F32);
  const std::vector<Tensor> short_list{w2[0]};
  CHECK_THROWS_WITH(ops::grouped_linear_pair_forward(x, w1, short_list, offsets, y1, y2),
                    Catch::Matchers::Contains("grouped_linear_pair_forward") &&
                        Catch::Matchers::Contains("offsets has 3 entries"));
}

TEST_CASE("grouped_linear: bad arguments fail with a clear message", "[kernels][grouped_linear]") {
  const Tensor x = random_tensor(Shape{8, 16}, 1, "x");
  const std::vector<Tensor> w{random_tensor(Shape{4, 16}, 2, "w0"), random_tensor(Shape{4, 16}, 3, "w1")};
  Tensor y(Shape{8, 4}, DType::F32);
  const std::vector<std::int64_t> short_offsets{0, 8};
  REQUIRE_THROWS_WITH(ops::grouped_linear_forward(x, w, short_offsets, y), Catch::Contains("want G + 1 = 3"));
  const std::vector<std::int64_t> not_m{0, 3, 7};
  REQUIRE_THROWS_WITH(ops::grouped_linear_forward(x, w, not_m, y), Catch::Contains("row count M = 8"));
  const std::vector<std::int64_t> decreasing{0, 9, 8};
  REQUIRE_THROWS_WITH(ops::grouped_linear_forward(x, w, decreasing, y), Catch::Contains("must not decrease"));
  const std::vector<Tensor> bad_w{w[0], random_tensor(Shape{5, 16}, 4, "w_bad")};
  const std::vector<std::int64_t> offsets{0, 3, 8};
  REQUIRE_THROWS_WITH(ops::grouped_linear_forward(x, bad_w, offsets, y), Catch::Contains("w[1] 'w_bad'"));
  std::vector<Tensor> one_dw{Tensor(Shape{4, 16}, DType::F32)};
  Tensor dx(Shape{8, 16}, DType::F32);
  REQUIRE_THROWS_WITH(ops::grouped_linear_backward(y, x, w, offsets, dx, one_dw),
                      Catch::Contains("one per weight"));
}
