// GPU vs CPU twin: block-scaled FP8 quantization must agree bit for bit; so must the
// transposed quantizer of row groups (cuda::quantize_fp8_transposed, the FP8 Wgrad's operands)
// against the CPU's quantize_fp8_transposed of each group.
//
// Fresh random inputs at DeepSeek-V3 shapes (activation tiles of [tokens, 7168],
// weight blocks of [2048, 7168] and [7168, 2048]) and small odd shapes, with
// special values sprinkled in. NaN positions are compared first, then every code
// and every scale exactly (the tolerance is zero: both sides round once, RNE).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/device_memory.h"
#include "kernels/cuda/fp8_quantize_cuda.h"
#include "kernels/fp8_quantize.h"
#include "tests/catch.h"

using namespace crucible;

namespace {

Tensor random_input(std::int64_t rows, std::int64_t cols, std::uint64_t seed, bool specials) {
  Tensor x(Shape{rows, cols}, DType::F32);
  std::mt19937_64 gen(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> log_mag(-12.0f, 12.0f);
  float* p = x.data<float>();
  for (std::int64_t i = 0; i < x.numel(); ++i)
    p[i] = normal(gen) * std::exp2(std::floor(log_mag(gen) / 4.0f));  // per-element magnitudes vary
  if (specials && x.numel() > 16) {
    p[0] = 0.0f;
    p[1] = -0.0f;
    p[2] = std::numeric_limits<float>::infinity();
    p[3] = -std::numeric_limits<float>::infinity();
    p[4] = std::numeric_limits<float>::quiet_NaN();
    p[5] = 1e30f;
    p[6] = 1e-30f;
  }
  return x;
}

void compare(const Fp8Tensor& cpu, const Fp8Tensor& gpu_on_host, const std::string& what) {
  INFO(what);
  REQUIRE(cpu.q.shape() == gpu_on_host.q.shape());
  REQUIRE(cpu.scale.shape() == gpu_on_host.scale.shape());
  const DType fmt = cpu.format();
  const auto* a = cpu.q.data<std::uint8_t>();
  const auto* b = gpu_on_host.q.data<std::uint8_t>();
  auto is_nan_code = [&](std::uint8_t c) {
    return fmt == DType::E4M3 ? (c & 0x7F) == 0x7F : (c & 0x7F) > 0x7C;
  };
  std::int64_t nan_mismatch = 0, code_mismatch = 0;
  for (std::int64_t i = 0; i < cpu.q.numel(); ++i) {
    if (is_nan_code(a[i]) != is_nan_code(b[i])) ++nan_mismatch;
    else if (!is_nan_code(a[i]) && a[i] != b[i]) ++code_mismatch;
  }
  REQUIRE(nan_mismatch == 0);
  REQUIRE(code_mismatch == 0);
  const float* sa = cpu.scale.data<float>();
  const float* sb = gpu_on_host.scale.data<float>();
  std::int64_t scale_mismatch = 0;
  for (std::int64_t i = 0; i < cpu.scale.numel(); ++i)
    if (std::memcmp(&sa[i], &sb[i], sizeof(float)) != 0) ++scale_mismatch;
  REQUIRE(scale_mismatch == 0);
}

Fp8Tensor to_host(const Fp8Tensor& t) { return {t.q.to(Device::cpu()), t.scale.to(Device::cpu()), t.layout}; }

}  // namespace

TEST_CASE("fp8 quantize: CUDA matches the CPU reference bit for bit", "[gpu][fp8]") {
  REQUIRE(cuda_device_count() > 0);
  struct Case { std::int64_t rows, cols; };
  const Case cases[] = {{4096, 7168}, {2048, 7168}, {7168, 2048}, {576, 7168}, {3, 300}, {257, 130}, {1, 7}};
  std::uint64_t seed = 1;
  for (DType fmt : {DType::E4M3, DType::E5M2})
    for (bool pow2 : {false, true})
      for (ScaleLayout layout : {ScaleLayout::Tile1x128, ScaleLayout::Block128x128})
        for (const Case& c : cases) {
          const Tensor x = random_input(c.rows, c.cols, seed++, true);
          const Fp8Options opts{fmt, pow2};
          const Fp8Tensor cpu = quantize_fp8(x, layout, opts);
          const Fp8Tensor gpu = ops::quantize_fp8(x.to(Device::cuda(0)), layout, opts);
          const std::string what = std::string(dtype_name(fmt)) + (pow2 ? " pow2 " : " ") +
                                   (layout == ScaleLayout::Tile1x128 ? "1x128 " : "128x128 ") +
                                   std::to_string(c.rows) + "x" + std::to_string(c.cols);
          compare(cpu, to_host(gpu), what);
          // Dequantization too: same floats (a product of two exact values, rounded once).
          const Tensor dc = dequantize_fp8(cpu);
          const Tensor dg = ops::dequantize_fp8(gpu).to(Device::cpu());
          std::int64_t mismatch = 0;
          for (std::int64_t i = 0; i < dc.numel(); ++i) {
            const float u = dc.data<float>()[i], v = dg.data<float>()[i];
            if (!(u == v || (std::isnan(u) && std::isnan(v)))) ++mismatch;
          }
          INFO(what);
          REQUIRE(mismatch == 0);
        }
}

TEST_CASE("fp8 quantize transposed (row groups): CUDA matches the CPU reference bit for bit", "[gpu][fp8]") {
  REQUIRE(cuda_device_count() > 0);
  struct Case {
    std::vector<std::int64_t> rows;  // the groups' rows, in order
    std::int64_t cols;
  };
  // Empty groups, partial and whole 128-tiles, odd column counts; a DeepSeek-V3 width.
  const Case cases[] = {{{1, 0, 127, 128, 129, 300}, 200}, {{33}, 7}, {{1000, 37}, 2048}, {{256}, 7168}};
  std::uint64_t seed = 900;
  for (const Case& c : cases) {
    std::int64_t M = 0;
    for (std::int64_t r : c.rows) M += r;
    const Tensor x = random_input(M, c.cols, ++seed, true);
    const Tensor x_gpu = x.to(Device::cuda(0));
    // Lay the groups out as the grouped Wgrad does: codes [cols, ld] and scales [L, cols]
    // per group, group after group.
    std::vector<cuda::Fp8TransposedGroup> groups;
    std::int64_t r0 = 0, codes = 0, scales = 0;
    for (std::int64_t n : c.rows) {
      const std::int64_t ld = (n + 15) / 16 * 16;
      groups.push_back({r0, n, codes * c.cols, ld, scales * c.cols, 1, c.cols});
      r0 += n;
      codes += ld;
      scales += (n + 127) / 128;
    }
    Tensor q_gpu(Shape{std::max<std::int64_t>(codes * c.cols, 1)}, DType::E4M3, Device::cuda(0), "q");
    Tensor s_gpu(Shape{std::max<std::int64_t>(scales * c.cols, 1)}, DType::F32, Device::cuda(0), "scale");
    REQUIRE(cudaDeviceSynchronize() == cudaSuccess);
    cuda::quantize_fp8_transposed(static_cast<const float*>(x_gpu.raw()), c.cols, groups,
                                  static_cast<std::uint8_t*>(q_gpu.raw()), static_cast<float*>(s_gpu.raw()), {},
                                  nullptr);
    const Tensor q = q_gpu.to(Device::cpu()), s = s_gpu.to(Device::cpu());
    for (std::size_t g = 0; g < groups.size(); ++g) {
      const cuda::Fp8TransposedGroup& G = groups[g];
      if (G.rows == 0) continue;
      // The reference: x_g^T quantized in 1x128 tiles along x_g's rows.
      const Fp8Tensor ref = quantize_fp8_transposed(x.slice(G.row0, G.row0 + G.rows).clone(), ScaleLayout::Tile1x128);
      const std::int64_t L = ref.scale.dim(1);
      Fp8Tensor got{Tensor(Shape{c.cols, G.rows}, DType::E4M3), Tensor(Shape{c.cols, L}, DType::F32),
                    ScaleLayout::Tile1x128};
      std::int64_t padding_nonzero = 0;
      for (std::int64_t col = 0; col < c.cols; ++col) {
        const std::uint8_t* row = q.data<std::uint8_t>() + G.code_offset + col * G.ld;
        std::memcpy(got.q.data<std::uint8_t>() + col * G.rows, row, static_cast<std::size_t>(G.rows));
        for (std::int64_t b = G.rows; b < G.ld; ++b) padding_nonzero += row[b] != 0;
        for (std::int64_t kb = 0; kb < L; ++kb)
          got.scale.data<float>()[col * L + kb] = s.data<float>()[G.scale_offset + col * G.scale_col + kb * G.scale_kb];
      }
      INFO("group " << g << " of " << G.rows << " rows, " << c.cols << " columns");
      CHECK(padding_nonzero == 0);
      compare(ref, got, "transposed group " + std::to_string(g));
    }
  }
}
