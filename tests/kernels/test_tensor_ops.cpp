// repeat_columns and sum_repeated_columns (kernels/tensor_ops.h) against the
// copy_columns calls they replace (one per head in MLA): the same bits, the summed
// gradient added in head order onto what dst held; bad ranges are refused.
#include <cstring>
#include <random>
#include <string>

#include "kernels/tensor_ops.h"
#include "tests/catch.h"

using namespace crucible;

namespace {

Tensor random_tensor(Shape shape, std::uint32_t seed) {
  Tensor t(shape, DType::F32, Device::cpu(), "t" + std::to_string(seed));
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> u(-2.0f, 2.0f);
  for (float& v : t.span<float>()) v = u(gen);
  return t;
}

bool same_bits(const Tensor& a, const Tensor& b) {
  return a.nbytes() == b.nbytes() && std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}

}  // namespace

TEST_CASE("repeat_columns / sum_repeated_columns equal one copy_columns per block", "[tensor_ops]") {
  struct Case {
    std::int64_t rows, one_cols, one_col, width, count, stride, many_col;
  };
  // MLA (rope 64 of 192-wide heads, 16 heads), and odd sizes.
  for (const Case k : {Case{33, 64, 0, 64, 16, 192, 128}, Case{5, 9, 2, 3, 4, 5, 1}, Case{7, 4, 1, 3, 1, 3, 0}}) {
    const std::int64_t many_cols = k.many_col + (k.count - 1) * k.stride + k.width + 2;
    INFO("rows " << k.rows << " width " << k.width << " count " << k.count << " stride " << k.stride);
    const Tensor one = random_tensor(Shape{k.rows, k.one_cols}, 1), many0 = random_tensor(Shape{k.rows, many_cols}, 2);
    Tensor a = many0.clone(), b = many0.clone();
    ops::repeat_columns(one, k.one_col, a, k.many_col, k.width, k.count, k.stride);
    for (std::int64_t h = 0; h < k.count; ++h) ops::copy_columns(one, k.one_col, b, k.many_col + h * k.stride, k.width);
    CHECK(same_bits(a, b));

    const Tensor base = random_tensor(Shape{k.rows, k.one_cols}, 3);
    Tensor s = base.clone(), t = base.clone();
    ops::sum_repeated_columns(many0, k.many_col, k.width, k.count, k.stride, s, k.one_col);
    for (std::int64_t h = 0; h < k.count; ++h)
      ops::copy_columns(many0, k.many_col + h * k.stride, t, k.one_col, k.width, /*accumulate=*/true);
    CHECK(same_bits(s, t));
    CHECK(!same_bits(s, base));
  }
  Tensor one = random_tensor(Shape{4, 8}, 4), many = random_tensor(Shape{4, 20}, 5);
  REQUIRE_THROWS_WITH(ops::repeat_columns(one, 0, many, 0, 8, 3, 8), Catch::Contains("repeat_columns"));  // 24 > 20
  REQUIRE_THROWS_WITH(ops::sum_repeated_columns(many, 0, 8, 2, 4, one, 0), Catch::Contains("every 4 columns"));
}
