// kernels/cuda/grouped_linear_fp8_cuda.h: the FP8 block-scaled grouped GEMM (NT) behind the
// grouped linear ops: many independent problems C_g [M_g, N_g] (+)= A_g [M_g, K_g] B_g [N_g, K_g]^T
// in one launch (kernels/cuda/grouped_linear_fp8.cu; the contract of each problem is the
// emulated recipe of kernels/cpu/linear.cpp fp8_gemm).
//
// Per problem, with L = ceil(K / 128) K blocks and P_kb the FP32 partial sum of the E4M3 code
// products of K block kb:
//   acc = sum_{kb = 0, 1, ..., L - 1} (sa(m, kb) * sb(n, kb)) * P_kb(m, n)   (FP32, this order;
//         each step one fused multiply-add, where the CPU twin rounds the product first)
//   C(m, n) = acc            (beta = 0)     or     acc + C(m, n)   (beta = 1)
// Operands, device pointers:
//   a  E4M3 codes, row m at a + m * lda (bytes); b likewise with ldb. lda and ldb are
//      multiples of 16, a and b 16-byte aligned, and the bytes of a row between K and
//      round_up(K, 16) are zero (kernels/cuda/linear_cuda.h quantize_gemm_operand pads so).
//   sa(m, kb) = a_scale[m * a_scale_row + kb * a_scale_kb]                       (1x128 tiles)
//   sb(n, kb) = b_scale[(n / b_scale_group) * b_scale_row + kb * b_scale_kb]     (group 1:
//      1x128 tiles; 128: 128x128 blocks)
//   c  FP32, row m at c + m * ldc (elements), any alignment.
// Requirements (checked): compute capability 9.x; 0 < M, N < 2^31 per problem (empty
// problems are dropped), K >= 0.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <span>

namespace crucible::cuda {

struct Fp8GroupedProblem {
  const std::uint8_t* a = nullptr;  // [M, lda] E4M3 codes
  const std::uint8_t* b = nullptr;  // [N, ldb] E4M3 codes
  const float* a_scale = nullptr;   // see the file comment
  const float* b_scale = nullptr;
  float* c = nullptr;               // [M, ldc] FP32
  std::int64_t lda = 0, ldb = 0, ldc = 0;
  std::int64_t a_scale_row = 0, a_scale_kb = 0;
  std::int64_t b_scale_row = 0, b_scale_kb = 0;
  std::int32_t b_scale_group = 1;   // 1 or 128
  std::int32_t M = 0, N = 0, K = 0;
  float beta = 0.0f;                // 0 or 1
  std::int32_t tile_begin = 0;      // set by the launcher: first CTA tile of this problem
};

// Runs every problem in one kernel launch on `stream` (the current device). The problem
// list is uploaded once (stream-ordered); the host span may be released on return.
void sm90_fp8_grouped_gemm_nt(std::span<const Fp8GroupedProblem> problems, cudaStream_t stream);

}  // namespace crucible::cuda
