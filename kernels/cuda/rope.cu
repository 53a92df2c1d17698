// kernels/cuda/rope.cu: rotary position embedding, in place, on the GPU (FP32).
//
// The CUDA twin of rope_apply in kernels/cpu/elementwise.cpp; it agrees with it bit
// for bit. Pair (a, b) at frequency i of token t rotates by the table entries
// c = cos[pos[t], i], s = sign * sin[pos[t], i] (sign = -1 for the inverse):
//   (a, b) -> (a c - b s, a s + b c)
// with each product rounded on its own (__fmul_rn, __fadd_rn: no FMA contraction),
// as on the CPU. interleaved: a = x[2i], b = x[2i + 1] (DeepSeek's 64 decoupled
// dims); half-split: a = x[i], b = x[i + rot/2] (Llama/Qwen rotate_half).
//
// Positions outside [0, max_pos) are found inside the kernel, which prints the
// position and its token and traps (the CPU twin throws).
//
// NOTE: memory bound; one thread per pair, consecutive threads on consecutive pairs
// of one head, so a warp's loads are contiguous (interleaved) or two contiguous runs
// (half-split). The cos/sin rows are shared by every head of a token and stay in L1.
#include "core/cuda_check.h"
#include "kernels/cuda/device_utils.cuh"
#include "kernels/cuda/elementwise_cuda.h"

namespace crucible::cuda {

namespace {

constexpr int kThreads = 256;

// x [T, H, d]; pair p of [T * H * half] is (row th = p / half, frequency i = p % half).
template <bool kInterleaved>
__global__ void __launch_bounds__(kThreads)
    rope_kernel(float* __restrict__ x, const std::int32_t* __restrict__ pos, const float* __restrict__ cos,
                const float* __restrict__ sin, std::int64_t H, std::int64_t d, std::int64_t half,
                std::int64_t max_pos, std::int64_t n_pairs, float sign) {
  const std::int64_t p = static_cast<std::int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (p >= n_pairs) return;
  const std::int64_t i = p % half, th = p / half, t = th / H;
  const std::int32_t position = pos[t];
  if (position < 0 || position >= max_pos) {
    if (i == 0 && th % H == 0)
      CRUCIBLE_DEVICE_FAIL("rope_apply: position %d of token %lld is outside the rope table [0, %lld)\n",
                           position, static_cast<long long>(t), static_cast<long long>(max_pos));
    return;
  }
  const float c = cos[position * half + i];
  const float s = sign * sin[position * half + i];
  float* v = x + th * d;
  float* pa = kInterleaved ? v + 2 * i : v + i;
  float* pb = kInterleaved ? v + 2 * i + 1 : v + i + half;
  const float a = *pa, b = *pb;
  *pa = __fsub_rn(__fmul_rn(a, c), __fmul_rn(b, s));
  *pb = __fadd_rn(__fmul_rn(a, s), __fmul_rn(b, c));
}

}  // namespace

void rope_apply(float* x, const std::int32_t* pos, const float* cos, const float* sin, std::int64_t T,
                std::int64_t H, std::int64_t d, std::int64_t offset, std::int64_t rot, std::int64_t max_pos,
                bool interleaved, bool inverse, void* stream) {
  const std::int64_t half = rot / 2, n_pairs = T * H * half;
  if (n_pairs == 0) return;
  auto st = static_cast<cudaStream_t>(stream);
  const auto grid = static_cast<unsigned>(detail::ceil_div(n_pairs, kThreads));
  const float sign = inverse ? -1.0f : 1.0f;
  if (interleaved)
    rope_kernel<true><<<grid, kThreads, 0, st>>>(x + offset, pos, cos, sin, H, d, half, max_pos, n_pairs, sign);
  else
    rope_kernel<false><<<grid, kThreads, 0, st>>>(x + offset, pos, cos, sin, H, d, half, max_pos, n_pairs, sign);
  CHECK_CUDA_LAUNCH();
}

}  // namespace crucible::cuda
