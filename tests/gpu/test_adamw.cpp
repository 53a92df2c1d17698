// GPU vs CPU twin: AdamW with FP32 and BF16 moments, and Σ x^2 (kernels/adamw.h).
//
// AdamW must match bit for bit, and does honestly: both twins take the same
// host-computed scalars (ops::adamw_scalars), evaluate the same expression tree with
// every operation rounded once to nearest even (IEEE-exact * + / sqrt on both sides;
// the CUDA twin spells them __fmul_rn/__fadd_rn/__fdiv_rn/__fsqrt_rn so nvcc cannot
// fuse an FMA, and the CPU build, -std=c++20 without GNU extensions, does not either),
// and round BF16 moments with one rule (core/numerics.h: RNE, NaN -> 0x7FC0 | sign).
// So after three steps param, m and v have the same bits; NaN positions are compared
// first, and NaN payloads and signs are not (x86 and CUDA make different default NaNs).
// Inputs: gradients with magnitudes from 2^-24 to 4 (BF16 rounding, tiny v), and at
// fixed positions NaN, inf, 0, 1e30 (g^2 overflows) and 1e-30 (g^2 underflows);
// weight decay and a gradient scale on; aligned buffers (vector path) and views one
// element off (scalar path), at DeepSeek-V3 weight sizes and odd sizes.
//
// Σ x^2: every term is an exact double (a float's square) and non-negative, so each
// twin's sum, in any order, is within (n - 1) 2^-53 Σ of the exact one: the twins
// differ by <= 2 n 2^-53 Σ. A second GPU call gives the same bits (fixed order).
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "core/device_memory.h"
#include "kernels/adamw.h"
#include "tests/catch.h"
#include "tests/gpu/elementwise_cases.h"
#include "tests/gpu/gpu_compare.h"

using namespace crucible;
using namespace crucible::gpu_test;

namespace {

const Device kGpu = Device::cuda(0);

// A copy of `host` on the GPU, `offset` elements into a larger buffer (offset 1
// misaligns it for the vector accesses).
Tensor gpu_view(const Tensor& host, std::int64_t offset) {
  Tensor buffer(Shape{host.numel() + offset}, host.dtype(), kGpu, host.name());
  Tensor view(buffer.storage(), static_cast<std::size_t>(offset) * dtype_size(host.dtype()), host.shape(),
              host.dtype(), host.name());
  view.copy_from(host);
  return view;
}

// Gradient-like values: uniform sign and mantissa, magnitude 2^k with k in [-24, 2].
Tensor random_grad(std::int64_t n, std::uint64_t seed, bool specials) {
  Tensor g(Shape{n}, DType::F32, Device::cpu(), "grad");
  SplitMix rng{seed};
  for (float& v : g.span<float>())
    v = rng.uniform(-1.0f, 1.0f) * std::exp2(static_cast<float>(rng.below(27) - 24));
  if (specials && n > 16) {
    float* p = g.data<float>();
    p[0] = std::numeric_limits<float>::quiet_NaN();
    p[1] = std::numeric_limits<float>::infinity();
    p[2] = 0.0f;
    p[3] = 1e30f;
    p[4] = -1e-30f;
  }
  return g;
}

}  // namespace

TEST_CASE("adamw: CUDA matches the CPU twin bit for bit, FP32 and BF16 moments", "[gpu][adamw]") {
  REQUIRE(cuda_device_count() > 0);
  std::uint64_t seed = 5000;
  for (const gpu_cases::AdamWCase& c : gpu_cases::kAdamWCases)
    for (DType moments : {DType::F32, DType::BF16}) {
      const std::string name =
          std::string("adamw ") + c.name + " " + std::string(dtype_name(moments)) + " moments";
      const std::int64_t n = c.n;
      Tensor p = uniform_tensor(Shape{n}, seed++, "param", -0.05f, 0.05f);
      Tensor m(Shape{n}, moments, Device::cpu(), "m"), v(Shape{n}, moments, Device::cpu(), "v");
      Tensor pg = gpu_view(p, c.offset), mg = gpu_view(m, c.offset), vg = gpu_view(v, c.offset);
      for (std::int64_t step = 1; step <= 3; ++step) {
        const Tensor g = random_grad(n, seed++, /*specials=*/step == 2);
        ops::AdamWStep s;
        s.lr = 3e-4f * static_cast<float>(step);
        s.weight_decay = 0.1f;
        s.grad_scale = 0.7f;
        s.step = step;
        ops::adamw_update(p, g, m, v, s);
        const Tensor gg = gpu_view(g, c.offset);
        ops::adamw_update(pg, gg, mg, vg, s);
      }
      require_same_bits(name + " param", p, pg);
      require_same_bits(name + " m", m, mg);
      require_same_bits(name + " v", v, vg);
    }
}

TEST_CASE("sum_squares: CUDA matches the CPU twin within 2 n 2^-53 and is deterministic", "[gpu][adamw]") {
  REQUIRE(cuda_device_count() > 0);
  std::uint64_t seed = 6000;
  for (const gpu_cases::AdamWCase& c : gpu_cases::kAdamWCases) {
    INFO(c.name);
    const Tensor x = random_grad(c.n, seed++, /*specials=*/false);
    const Tensor xg = gpu_view(x, c.offset);
    const double cpu = ops::sum_squares(x);
    const double gpu = ops::sum_squares(xg);
    const double tol = 2.0 * static_cast<double>(c.n) * 0x1p-53 * cpu;
    INFO("cpu " << cpu << " gpu " << gpu << " tol " << tol);
    REQUIRE(std::fabs(gpu - cpu) <= tol);
    const double again = ops::sum_squares(xg);
    REQUIRE(std::memcmp(&gpu, &again, sizeof(double)) == 0);
  }
}
