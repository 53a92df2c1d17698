// kernels/cuda/logprob_head.cu: the fused, vocab-chunked LM head on the GPU: per-token
// log-probs (+ entropy), their backward, and top-k next tokens.
//
// The CUDA twin of kernels/cpu/logprob_head.cpp, chunk by chunk in the same order:
//   logits [T, n] = h w[c0 : c0 + n]^T      cuBLASLt FP32 (pedantic FFMA, no TF32), or
//             with bf16 BF16 operands (h once, w per chunk, the logits gradient per chunk
//             rounded RNE, as the CPU rounds them) and FP32 accumulation
//   forward   online log-sum-exp per row (one 256-thread block per row): the chunk's
//             max, the CPU's FP64 rescale of the running sums when the max grows, then
//             sum += exp(l - m), xsum += exp(l - m) (l - m) in FP64 (block sums in a fixed
//             order); lse = m + log(sum), logp = l_target - lse, entropy = log(sum) -
//             xsum / sum, as the CPU.
//   backward  the chunk's logits again, then g[t, j] = -dlogp[t] exp(l - lse[t]) (+ dlogp[t]
//             at the target), each operation rounded as the CPU rounds it (__fmul_rn,
//             __fadd_rn), written as the GEMMs read it (FP32, or BF16 RNE straight from
//             the kernel), then dh (= at the first chunk, += after) = g w_chunk and
//             dw_chunk += g^T h: two more GEMMs.
//   top-k     per chunk and row, the k best of (the running k best) U (the chunk) under
//             the CPU's order (higher logit, then lower id), by k block argmaxes, each
//             restricted to the elements ranked after the previous pick.
// exp is evaluated in FP64 and rounded once (the correctly rounded expf; glibc's expf is
// within 0.502 ulp). What differs from the CPU: the GEMMs' summation order and the FP64
// block sums' order; tests/gpu/test_logprob_head.cpp bounds both.
// Deterministic: no atomics; every reduction order is fixed by the launch shape.
//
// NOTE: GEMM bound. Per chunk the forward runs 2 T n D FLOPs of GEMM against T n 4 bytes
// written and read by one small kernel (8 MiB at T = 512, n = 4096, vs 30 GFLOP: the
// kernel costs ~1% of the FP32 GEMM); the backward runs three GEMMs per chunk (recompute,
// dh, dw) and one elementwise kernel. The FP64 exp (~20 DFMA per logit) is far below
// the GEMM's FFMA count per logit (D = 7168).
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <type_traits>

#include "core/cuda_check.h"
#include "kernels/cuda/cublaslt_context.h"
#include "kernels/cuda/device_utils.cuh"
#include "kernels/cuda/gemm_cublaslt.h"
#include "kernels/cuda/gemm_prep_cuda.h"
#include "kernels/cuda/logprob_head_cuda.h"

namespace crucible::cuda {

namespace {

using detail::ceil_div;
using detail::block_max;
using detail::kWarp;

constexpr int kThreads = 256;
constexpr unsigned kFull = 0xffffffffu;

// Running state of one row's online log-sum-exp (the CPU's OnlineLse).
struct LseState {
  float m;        // running max (-inf before the first chunk)
  float target;   // the target's logit, once its chunk has passed
  double sum;     // sum exp(l - m)
  double xsum;    // sum exp(l - m) (l - m)
};

__device__ __forceinline__ float exp_rn(float x) { return static_cast<float>(exp(static_cast<double>(x))); }


__global__ void lse_init_kernel(LseState* __restrict__ st, std::int64_t T) {
  const std::int64_t t = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (t < T) st[t] = LseState{-INFINITY, 0.0f, 0.0, 0.0};
}

// One block per row t: folds logits [t, 0 : n) of the chunk starting at c0 into st[t].
// targets may be nullptr (top-k: no target).
// NOTE: the row is read twice (max, then sums). Holding it in registers between the two
// (16 per thread) measured slower: 92 -> 116 us per 4096-wide chunk at T 8192
// (bench/results/session8-2026-11-24, call 3).
__global__ void __launch_bounds__(kThreads)
    lse_update_kernel(const float* __restrict__ logits, std::int64_t n, std::int64_t c0, std::int64_t V,
                      const std::int32_t* __restrict__ targets, bool entropy, LseState* __restrict__ st) {
  __shared__ float fscratch[kWarp];
  __shared__ double dscratch[kWarp];
  const std::int64_t t = blockIdx.x;
  const float* l = logits + t * n;
  LseState s = st[t];
  float cm = s.m;
  for (std::int64_t j = threadIdx.x; j < n; j += kThreads) cm = fmaxf(cm, l[j]);
  cm = block_max(cm, fscratch);
  if (cm > s.m) {  // rescale to the new max, as the CPU: exp(l - cm) = exp(l - m) exp(m - cm)
    if (s.sum > 0) {
      const double delta = static_cast<double>(s.m) - cm, a = exp(delta);
      s.xsum = __dmul_rn(a, __dadd_rn(s.xsum, __dmul_rn(delta, s.sum)));
      s.sum = __dmul_rn(s.sum, a);
    }
    s.m = cm;
  }
  double sum = 0.0, xsum = 0.0;
  for (std::int64_t j = threadIdx.x; j < n; j += kThreads) {
    const float x = l[j] - s.m;
    const float e = exp_rn(x);
    sum += e;
    if (entropy) xsum += static_cast<double>(e) * x;
  }
  sum = detail::block_sum(sum, dscratch);
  if (entropy) xsum = detail::block_sum(xsum, dscratch);
  if (threadIdx.x != 0) return;
  s.sum += sum;
  s.xsum += xsum;
  if (targets) {
    const std::int32_t tg = targets[t];
    if (c0 == 0 && (tg < 0 || tg >= V))
      CRUCIBLE_DEVICE_FAIL("logprob_head: target of row %lld is token id %d, outside the vocabulary [0, %lld)\n",
                           static_cast<long long>(t), tg, static_cast<long long>(V));
    if (tg >= c0 && tg < c0 + n) s.target = l[tg - c0];
  }
  st[t] = s;
}

__global__ void lse_finish_kernel(const LseState* __restrict__ st, std::int64_t T, float* __restrict__ logp,
                                  float* __restrict__ lse, float* __restrict__ entropy) {
  const std::int64_t t = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (t >= T) return;
  const LseState s = st[t];
  const float l = s.m + static_cast<float>(log(s.sum));
  if (lse) lse[t] = l;
  if (logp) logp[t] = s.target - l;
  if (entropy) entropy[t] = static_cast<float>(log(s.sum) - s.xsum / s.sum);
}

// lse_update_kernel over a chunk of n logits per row.
void lse_update(const float* logits, std::int64_t T, std::int64_t n, std::int64_t c0, std::int64_t V,
                const std::int32_t* targets, bool entropy, LseState* st, cudaStream_t stream) {
  lse_update_kernel<<<static_cast<unsigned>(T), kThreads, 0, stream>>>(logits, n, c0, V, targets, entropy, st);
  CHECK_CUDA_LAUNCH();
}

template <typename Out>
__device__ __forceinline__ void store_grad(Out* out, std::int64_t i, float v) {
  if constexpr (std::is_same_v<Out, float>) out[i] = v;
  else out[i] = __float2bfloat16_rn(v);
}

// logits [T, n] -> g = -dlogp exp(l - lse) (+ dlogp at the target), written to `out`:
// in place as FP32 (Out = float, out == logits), or rounded RNE to BF16 straight into the
// GEMMs' operand (Out = bf16), the bits cast_f32_to_bf16 would make of the FP32 g.
// Thread k of block (t, y) handles elements 4 (256 y + k) .. + 3 of row t: one 16-byte
// load (and an 8- or 16-byte store) when kVec (n % 4 == 0), else 4 scalar accesses.
template <typename Out, bool kVec>
__global__ void logits_grad_kernel(const float* logits, Out* out, std::int64_t n, std::int64_t c0, std::int64_t V,
                                   const float* __restrict__ dlogp, const float* __restrict__ lse,
                                   const std::int32_t* __restrict__ targets) {
  const std::int64_t t = blockIdx.x;
  const std::int64_t j0 = (static_cast<std::int64_t>(blockIdx.y) * blockDim.x + threadIdx.x) * 4;
  if (j0 >= n) return;
  const std::int32_t tg = targets[t];
  if (c0 == 0 && j0 == 0 && (tg < 0 || tg >= V))
    CRUCIBLE_DEVICE_FAIL("logprob_head_backward: target of row %lld is token id %d, outside the vocabulary [0, %lld)\n",
                         static_cast<long long>(t), tg, static_cast<long long>(V));
  const float gt = dlogp[t], m = lse[t];
  const std::int64_t base = t * n + j0;
  float l[4];
  if constexpr (kVec) {
    const float4 f = *reinterpret_cast<const float4*>(logits + base);
    l[0] = f.x, l[1] = f.y, l[2] = f.z, l[3] = f.w;
  } else {
#pragma unroll
    for (int i = 0; i < 4; ++i) l[i] = j0 + i < n ? logits[base + i] : 0.0f;
  }
  float v[4];
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    v[i] = __fmul_rn(-gt, exp_rn(l[i] - m));
    if (tg == c0 + j0 + i) v[i] = __fadd_rn(v[i], gt);
  }
  if constexpr (kVec && std::is_same_v<Out, float>) {
    *reinterpret_cast<float4*>(out + base) = make_float4(v[0], v[1], v[2], v[3]);
  } else if constexpr (kVec) {
    const __nv_bfloat162 a = __floats2bfloat162_rn(v[0], v[1]), b = __floats2bfloat162_rn(v[2], v[3]);
    uint2 packed;
    packed.x = *reinterpret_cast<const unsigned*>(&a);
    packed.y = *reinterpret_cast<const unsigned*>(&b);
    *reinterpret_cast<uint2*>(out + base) = packed;
  } else {
#pragma unroll
    for (int i = 0; i < 4; ++i)
      if (j0 + i < n) store_grad(out, base + i, v[i]);
  }
}

template <typename Out>
void logits_grad(const float* logits, Out* out, std::int64_t T, std::int64_t n, std::int64_t c0, std::int64_t V,
                 const float* dlogp, const float* lse, const std::int32_t* targets, cudaStream_t stream) {
  const dim3 grid(static_cast<unsigned>(T), static_cast<unsigned>(ceil_div(ceil_div(n, 4), kThreads)));
  if (n % 4 == 0)
    logits_grad_kernel<Out, true><<<grid, kThreads, 0, stream>>>(logits, out, n, c0, V, dlogp, lse, targets);
  else
    logits_grad_kernel<Out, false><<<grid, kThreads, 0, stream>>>(logits, out, n, c0, V, dlogp, lse, targets);
  CHECK_CUDA_LAUNCH();
}

// The CPU's output order: a before b when higher, ties to the lower id; id -1 = none.
__device__ __forceinline__ bool ranks_before(float a, int ia, float b, int ib) {
  return ib < 0 || (ia >= 0 && (a > b || (a == b && ia < ib)));
}

__device__ __forceinline__ void block_best(float& v, int& i, float* sv, int* si) {
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
#pragma unroll
  for (int offset = kWarp / 2; offset > 0; offset /= 2) {
    const float ov = __shfl_xor_sync(kFull, v, offset);
    const int oi = __shfl_xor_sync(kFull, i, offset);
    if (ranks_before(ov, oi, v, i)) v = ov, i = oi;
  }
  if (lane == 0) sv[warp] = v, si[warp] = i;
  __syncthreads();
  v = sv[0], i = si[0];
  for (int w = 1; w < static_cast<int>(blockDim.x) / kWarp; ++w)
    if (ranks_before(sv[w], si[w], v, i)) v = sv[w], i = si[w];
  __syncthreads();
}

// One block per row t: new_best [t, 0 : k_new) = the k_new best of old_best [t, 0 : k_old)
// U logits [t, 0 : n) (ids c0 + j), best first. Lists are [T, k] (vals f32, ids i32).
__global__ void __launch_bounds__(kThreads)
    topk_merge_kernel(const float* __restrict__ logits, std::int64_t n, std::int64_t c0, std::int64_t k,
                      std::int64_t k_old, std::int64_t k_new, const float* __restrict__ old_v,
                      const std::int32_t* __restrict__ old_i, float* __restrict__ new_v,
                      std::int32_t* __restrict__ new_i) {
  __shared__ float sv[kWarp];
  __shared__ int si[kWarp];
  const std::int64_t t = blockIdx.x;
  const float* l = logits + t * n;
  const float* ov = old_v + t * k;
  const std::int32_t* oi = old_i + t * k;
  float pv = 0.0f;
  int pi = -1;
  for (std::int64_t r = 0; r < k_new; ++r) {
    float bv = 0.0f;
    int bi = -1;
    for (std::int64_t j = threadIdx.x; j < k_old + n; j += kThreads) {
      const float x = j < k_old ? ov[j] : l[j - k_old];
      const int id = j < k_old ? oi[j] : static_cast<int>(c0 + j - k_old);
      if (pi >= 0 && !ranks_before(pv, pi, x, id)) continue;  // already picked
      if (ranks_before(x, id, bv, bi)) bv = x, bi = id;
    }
    block_best(bv, bi, sv, si);
    pv = bv, pi = bi;
    if (threadIdx.x == 0) new_v[t * k + r] = bv, new_i[t * k + r] = bi;
  }
}

__global__ void topk_finish_kernel(const float* __restrict__ vals, const std::int32_t* __restrict__ best,
                                   const LseState* __restrict__ st, std::int64_t T, std::int64_t k,
                                   std::int32_t* __restrict__ ids, float* __restrict__ logp) {
  const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= T * k) return;
  const LseState s = st[i / k];
  const float l = s.m + static_cast<float>(log(s.sum));
  ids[i] = best[i];
  logp[i] = vals[i] - l;
}

// The head's GEMM operands: the FP32 tensors as they are, or BF16 (RNE) copies made in
// stream order: h once, a chunk of w (or of the logits gradient) per call.
class HeadOperands {
 public:
  HeadOperands(const float* h, std::int64_t T, std::int64_t D, std::int64_t chunk, bool bf16, cudaStream_t st)
      : bf16_(bf16), D_(D), st_(st) {
    if (!bf16) {
      h_ = GemmOperand{h, DType::F32};
      return;
    }
    hb_ = DeviceScratch(static_cast<std::size_t>(T * D) * 2, st);
    cast_f32_to_bf16(h, hb_.as<std::uint16_t>(), T * D, st);
    h_ = GemmOperand{hb_.get(), DType::BF16};
    wb_ = DeviceScratch(static_cast<std::size_t>(chunk * D) * 2, st);
    gb_ = DeviceScratch(static_cast<std::size_t>(T * chunk) * 2, st);
  }
  const GemmOperand& h() const { return h_; }
  // Rows [c0, c0 + n) of w [V, D].
  GemmOperand w_chunk(const float* w, std::int64_t c0, std::int64_t n) { return operand(w + c0 * D_, n * D_, wb_); }
  bool bf16_operands() const { return bf16_; }
  // The BF16 buffer of one chunk's logits gradient [T, chunk] (BF16 operands only).
  __nv_bfloat16* grad_buffer() const { return gb_.as<__nv_bfloat16>(); }

 private:
  GemmOperand operand(const float* p, std::int64_t count, DeviceScratch& buf) {
    if (!bf16_) return GemmOperand{p, DType::F32};
    cast_f32_to_bf16(p, buf.as<std::uint16_t>(), count, st_);
    return GemmOperand{buf.get(), DType::BF16};
  }
  bool bf16_;
  std::int64_t D_;
  cudaStream_t st_;
  DeviceScratch hb_, wb_, gb_;
  GemmOperand h_;
};

// logits [T, n] = h [T, D] w[c0 : c0 + n, D]^T (FP32 accumulation).
void chunk_logits(HeadOperands& operands, const float* w, std::int64_t T, std::int64_t D, std::int64_t c0,
                  std::int64_t n, float* logits, cudaStream_t st) {
  gemm_rowmajor(false, true, T, n, D, operands.h(), operands.w_chunk(w, c0, n), logits, 0.0f, st);
}

unsigned row_blocks(std::int64_t rows) { return static_cast<unsigned>(ceil_div(rows, kThreads)); }

}  // namespace

void logprob_head_forward(const float* h, const float* w, const std::int32_t* targets, float* logp, float* lse,
                          float* entropy, std::int64_t T, std::int64_t D, std::int64_t V, std::int64_t chunk,
                          bool bf16, void* stream) {
  if (T == 0) return;
  auto st = static_cast<cudaStream_t>(stream);
  HeadOperands operands(h, T, D, chunk, bf16, st);
  DeviceScratch logits(static_cast<std::size_t>(T * chunk) * sizeof(float), st);  // [T, chunk]
  DeviceScratch state(static_cast<std::size_t>(T) * sizeof(LseState), st);         // [T]
  lse_init_kernel<<<row_blocks(T), kThreads, 0, st>>>(state.as<LseState>(), T);
  CHECK_CUDA_LAUNCH();
  for (std::int64_t c0 = 0; c0 < V; c0 += chunk) {
    const std::int64_t n = std::min(chunk, V - c0);
    chunk_logits(operands, w, T, D, c0, n, logits.as<float>(), st);
    lse_update(logits.as<float>(), T, n, c0, V, targets, entropy != nullptr, state.as<LseState>(), st);
  }
  lse_finish_kernel<<<row_blocks(T), kThreads, 0, st>>>(state.as<LseState>(), T, logp, lse, entropy);
  CHECK_CUDA_LAUNCH();
}

void logprob_head_backward(const float* dlogp, const float* h, const float* w, const std::int32_t* targets,
                           const float* lse, float* dh, float* dw, std::int64_t T, std::int64_t D, std::int64_t V,
                           std::int64_t chunk, bool bf16, void* stream) {
  if (T == 0) return;
  auto st = static_cast<cudaStream_t>(stream);
  HeadOperands operands(h, T, D, chunk, bf16, st);
  DeviceScratch grad(static_cast<std::size_t>(T * chunk) * sizeof(float), st);  // [T, chunk]
  float* g = grad.as<float>();
  for (std::int64_t c0 = 0; c0 < V; c0 += chunk) {
    const std::int64_t n = std::min(chunk, V - c0);
    const GemmOperand wc = operands.w_chunk(w, c0, n);
    gemm_rowmajor(false, true, T, n, D, operands.h(), wc, g, 0.0f, st);  // the chunk's logits again
    GemmOperand gc{g, DType::F32};
    if (operands.bf16_operands()) {  // the GEMMs' BF16 operand, written once
      logits_grad(g, operands.grad_buffer(), T, n, c0, V, dlogp, lse, targets, st);
      gc = GemmOperand{operands.grad_buffer(), DType::BF16};
    } else {
      logits_grad(g, g, T, n, c0, V, dlogp, lse, targets, st);
    }
    // dh (=, then +=) g w_chunk;  dw_chunk += g^T h
    gemm_rowmajor(false, false, T, D, n, gc, wc, dh, c0 == 0 ? 0.0f : 1.0f, st);
    gemm_rowmajor(true, false, n, D, T, gc, operands.h(), dw + c0 * D, 1.0f, st);
  }
}

void logprob_head_topk(const float* h, const float* w, std::int64_t k, std::int32_t* ids, float* logp,
                       std::int64_t T, std::int64_t D, std::int64_t V, std::int64_t chunk, bool bf16, void* stream) {
  if (T == 0 || k == 0) return;
  CRUCIBLE_CHECK(V <= INT32_MAX, "logprob_head_topk: a vocabulary of ", V, " exceeds 32-bit ids");
  auto st = static_cast<cudaStream_t>(stream);
  HeadOperands operands(h, T, D, chunk, bf16, st);
  DeviceScratch logits(static_cast<std::size_t>(T * chunk) * sizeof(float), st);  // [T, chunk]
  DeviceScratch state(static_cast<std::size_t>(T) * sizeof(LseState), st);         // [T]
  // Two running lists [T, k] (values, ids), read one and write the other per chunk.
  DeviceScratch vals[2] = {DeviceScratch(static_cast<std::size_t>(T * k) * sizeof(float), st),
                           DeviceScratch(static_cast<std::size_t>(T * k) * sizeof(float), st)};
  DeviceScratch best[2] = {DeviceScratch(static_cast<std::size_t>(T * k) * sizeof(std::int32_t), st),
                           DeviceScratch(static_cast<std::size_t>(T * k) * sizeof(std::int32_t), st)};
  lse_init_kernel<<<row_blocks(T), kThreads, 0, st>>>(state.as<LseState>(), T);
  CHECK_CUDA_LAUNCH();
  int cur = 0;
  std::int64_t k_have = 0;
  for (std::int64_t c0 = 0; c0 < V; c0 += chunk) {
    const std::int64_t n = std::min(chunk, V - c0);
    chunk_logits(operands, w, T, D, c0, n, logits.as<float>(), st);
    lse_update(logits.as<float>(), T, n, c0, V, nullptr, false, state.as<LseState>(), st);
    const std::int64_t k_new = std::min(k, k_have + n);
    topk_merge_kernel<<<static_cast<unsigned>(T), kThreads, 0, st>>>(
        logits.as<float>(), n, c0, k, k_have, k_new, vals[cur].as<float>(), best[cur].as<std::int32_t>(),
        vals[1 - cur].as<float>(), best[1 - cur].as<std::int32_t>());
    CHECK_CUDA_LAUNCH();
    cur = 1 - cur;
    k_have = k_new;
  }
  topk_finish_kernel<<<static_cast<unsigned>(ceil_div(T * k, kThreads)), kThreads, 0, st>>>(
      vals[cur].as<float>(), best[cur].as<std::int32_t>(), state.as<LseState>(), T, k, ids, logp);
  CHECK_CUDA_LAUNCH();
}

}  // namespace crucible::cuda
