// kernels/cuda/grouped_linear_bf16_cuda.h: the BF16 grouped GEMM (NT) behind the grouped
// linear ops in Bf16: many independent problems C_g [M_g, N_g] (+)= A_g [M_g, K_g] B_g [N_g, K_g]^T
// in one launch (kernels/cuda/grouped_linear_bf16.cu), FP32 accumulation and output.
//
// Operands, device pointers to BF16 (RNE-rounded) elements: row m of A at a + m lda, row n of
// B at b + n ldb; lda and ldb are multiples of 8 and >= K, a and b 16-byte aligned, and the
// elements of a row between K and round_up(K, 8) are zero (the preparation pads them so).
// C is FP32, row m at c + m ldc (elements), any alignment; beta 0 writes C, beta 1 adds to it.
// Requirements (checked): compute capability 9.x; M, N, K >= 0 (empty problems are dropped).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <span>

namespace crucible::cuda {

struct Bf16GroupedProblem {
  const std::uint16_t* a = nullptr;  // [M, lda] BF16
  const std::uint16_t* b = nullptr;  // [N, ldb] BF16
  float* c = nullptr;                // [M, ldc] FP32
  std::int64_t lda = 0, ldb = 0, ldc = 0;
  std::int32_t M = 0, N = 0, K = 0;
  float beta = 0.0f;                 // 0 or 1
  std::int32_t tile_begin = 0;       // set by the launcher: first CTA tile of this problem
};

// Runs every problem in one kernel launch on `stream` (the current device). The problem
// list is uploaded once (stream-ordered); the host span may be released on return.
void sm90_bf16_grouped_gemm_nt(std::span<const Bf16GroupedProblem> problems, cudaStream_t stream);

}  // namespace crucible::cuda
