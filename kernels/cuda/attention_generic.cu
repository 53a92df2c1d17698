// kernels/cuda/attention_generic.cu: causal packed attention, forward and backward, in
// FP32 for any head dims up to kGenericMaxDim: the fallback behind attention_forward/
// attention_backward (attention_forward.cu, attention_backward.cu) for the shapes the
// BF16 tensor-core kernels have no variant for (the tiny demo models: dqk = 48,
// dv = 32; head dim 24).
//
// One block per (token, head) row, three sweeps over the row's keys: the max, the
// sum of exp, then the weighted sum in chunks of kChunk probabilities staged in
// shared memory; the backward recomputes the probabilities the same way (dQ per
// query row; dK and dV per key row over the queries and grouped heads that see it).
// Each thread owns fixed output columns and adds its terms in ascending key (or
// query) order, and the block reductions have a fixed order (device_utils.cuh), so
// the results are deterministic. Quadratic work with scalar loads: meant for small
// models, not for speed.
#include <cuda_runtime.h>

#include <cmath>

#include "core/cuda_check.h"
#include "core/error.h"
#include "kernels/cuda/attention_cuda.h"
#include "kernels/cuda/device_utils.cuh"

namespace crucible::cuda {

namespace {

constexpr int kThreads = 128;
constexpr int kChunk = 256;                      // probabilities staged per sweep step
constexpr int kPerThread = kGenericMaxDim / kThreads;  // output columns per thread

struct GenericParams {
  const float *q, *k, *v, *dout, *lse, *delta;
  const std::int32_t* cu;
  float *out, *lse_out, *dq, *dk, *dv;
  int T, Hq, Hkv, group, n_seq, dqk, dv_dim;
  float scale;
};

// The sequence b with cu[b] <= t < cu[b + 1] (binary search over the offsets).
__device__ int sequence_of(const std::int32_t* cu, int n_seq, int t) {
  int lo = 0, hi = n_seq - 1;
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    if (cu[mid] <= t) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

__device__ float dot(const float* a, const float* b, int n) {
  float s = 0;
  for (int i = 0; i < n; ++i) s = fmaf(a[i], b[i], s);
  return s;
}

__device__ float block_max(float v, float* scratch) {
  const int lane = threadIdx.x % detail::kWarp, warp = threadIdx.x / detail::kWarp;
  for (int offset = detail::kWarp / 2; offset > 0; offset /= 2)
    v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  float m = -INFINITY;
  for (int w = 0; w < kThreads / detail::kWarp; ++w) m = fmaxf(m, scratch[w]);
  __syncthreads();
  return m;
}

// grid (T, Hq): out [t, h] and lse [t, h].
__global__ void __launch_bounds__(kThreads) generic_forward_kernel(GenericParams p) {
  __shared__ float q_s[kGenericMaxDim], prob[kChunk], scratch[32];
  const int t = blockIdx.x, h = blockIdx.y, g = h / p.group;
  const int s0 = p.cu[sequence_of(p.cu, p.n_seq, t)], n = t - s0 + 1;
  const float* q = p.q + (static_cast<std::int64_t>(t) * p.Hq + h) * p.dqk;
  for (int i = threadIdx.x; i < p.dqk; i += kThreads) q_s[i] = q[i];
  __syncthreads();
  auto key = [&](int s) { return p.k + (static_cast<std::int64_t>(s0 + s) * p.Hkv + g) * p.dqk; };
  auto value = [&](int s) { return p.v + (static_cast<std::int64_t>(s0 + s) * p.Hkv + g) * p.dv_dim; };

  float m = -INFINITY;
  for (int s = threadIdx.x; s < n; s += kThreads) m = fmaxf(m, p.scale * dot(q_s, key(s), p.dqk));
  m = block_max(m, scratch);
  float l = 0;
  for (int s = threadIdx.x; s < n; s += kThreads) l += expf(p.scale * dot(q_s, key(s), p.dqk) - m);
  l = detail::block_sum(l, scratch);
  const float lse = m + logf(l);

  float acc[kPerThread] = {};
  for (int c0 = 0; c0 < n; c0 += kChunk) {
    const int len = min(kChunk, n - c0);
    for (int i = threadIdx.x; i < len; i += kThreads) prob[i] = expf(p.scale * dot(q_s, key(c0 + i), p.dqk) - lse);
    __syncthreads();
    for (int i = 0; i < len; ++i) {
      const float* vr = value(c0 + i);
#pragma unroll
      for (int j = 0; j < kPerThread; ++j) {
        const int col = threadIdx.x + j * kThreads;
        if (col < p.dv_dim) acc[j] = fmaf(prob[i], vr[col], acc[j]);
      }
    }
    __syncthreads();
  }
  float* out = p.out + (static_cast<std::int64_t>(t) * p.Hq + h) * p.dv_dim;
#pragma unroll
  for (int j = 0; j < kPerThread; ++j) {
    const int col = threadIdx.x + j * kThreads;
    if (col < p.dv_dim) out[col] = acc[j];
  }
  if (threadIdx.x == 0) p.lse_out[static_cast<std::int64_t>(t) * p.Hq + h] = lse;
}

// delta [t, h] = <dout, out> (one thread a row).
__global__ void generic_delta_kernel(const float* dout, const float* out, float* delta, std::int64_t rows, int dv) {
  const std::int64_t r = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
  if (r < rows) delta[r] = dot(dout + r * dv, out + r * dv, dv);
}

// grid (T, Hq): dq [t, h] = scale Σ_s P_ts (dO_t · v_s - delta_t) k_s.
__global__ void __launch_bounds__(kThreads) generic_dq_kernel(GenericParams p) {
  __shared__ float q_s[kGenericMaxDim], do_s[kGenericMaxDim], ds[kChunk];
  const int t = blockIdx.x, h = blockIdx.y, g = h / p.group;
  const int s0 = p.cu[sequence_of(p.cu, p.n_seq, t)], n = t - s0 + 1;
  const std::int64_t row = static_cast<std::int64_t>(t) * p.Hq + h;
  for (int i = threadIdx.x; i < p.dqk; i += kThreads) q_s[i] = p.q[row * p.dqk + i];
  for (int i = threadIdx.x; i < p.dv_dim; i += kThreads) do_s[i] = p.dout[row * p.dv_dim + i];
  __syncthreads();
  const float lse = p.lse[row], delta = p.delta[row];
  auto key = [&](int s) { return p.k + (static_cast<std::int64_t>(s0 + s) * p.Hkv + g) * p.dqk; };
  auto value = [&](int s) { return p.v + (static_cast<std::int64_t>(s0 + s) * p.Hkv + g) * p.dv_dim; };

  float acc[kPerThread] = {};
  for (int c0 = 0; c0 < n; c0 += kChunk) {
    const int len = min(kChunk, n - c0);
    for (int i = threadIdx.x; i < len; i += kThreads) {
      const float prob = expf(p.scale * dot(q_s, key(c0 + i), p.dqk) - lse);
      ds[i] = prob * (dot(do_s, value(c0 + i), p.dv_dim) - delta);
    }
    __syncthreads();
    for (int i = 0; i < len; ++i) {
      const float* kr = key(c0 + i);
#pragma unroll
      for (int j = 0; j < kPerThread; ++j) {
        const int col = threadIdx.x + j * kThreads;
        if (col < p.dqk) acc[j] = fmaf(ds[i], kr[col], acc[j]);
      }
    }
    __syncthreads();
  }
#pragma unroll
  for (int j = 0; j < kPerThread; ++j) {
    const int col = threadIdx.x + j * kThreads;
    if (col < p.dqk) p.dq[row * p.dqk + col] = p.scale * acc[j];
  }
}

// grid (T, Hkv): for key row s of kv head g, over the queries t >= s of its sequence
// and the group's query heads (pair i = (t - s) * group + head):
//   dv_s = Σ P_ts dO_t,   dk_s = scale Σ P_ts (dO_t · v_s - delta_t) q_t.
__global__ void __launch_bounds__(kThreads) generic_dkdv_kernel(GenericParams p) {
  __shared__ float k_s[kGenericMaxDim], v_s[kGenericMaxDim], prob[kChunk], ds[kChunk];
  const int s = blockIdx.x, g = blockIdx.y;
  const int b = sequence_of(p.cu, p.n_seq, s);
  const int pairs = (p.cu[b + 1] - s) * p.group;
  const std::int64_t kv_row = static_cast<std::int64_t>(s) * p.Hkv + g;
  for (int i = threadIdx.x; i < p.dqk; i += kThreads) k_s[i] = p.k[kv_row * p.dqk + i];
  for (int i = threadIdx.x; i < p.dv_dim; i += kThreads) v_s[i] = p.v[kv_row * p.dv_dim + i];
  __syncthreads();
  auto q_row = [&](int pair) {
    return static_cast<std::int64_t>(s + pair / p.group) * p.Hq + g * p.group + pair % p.group;
  };

  float acc_k[kPerThread] = {}, acc_v[kPerThread] = {};
  for (int c0 = 0; c0 < pairs; c0 += kChunk) {
    const int len = min(kChunk, pairs - c0);
    for (int i = threadIdx.x; i < len; i += kThreads) {
      const std::int64_t r = q_row(c0 + i);
      const float pr = expf(p.scale * dot(p.q + r * p.dqk, k_s, p.dqk) - p.lse[r]);
      prob[i] = pr;
      ds[i] = pr * (dot(p.dout + r * p.dv_dim, v_s, p.dv_dim) - p.delta[r]);
    }
    __syncthreads();
    for (int i = 0; i < len; ++i) {
      const std::int64_t r = q_row(c0 + i);
#pragma unroll
      for (int j = 0; j < kPerThread; ++j) {
        const int col = threadIdx.x + j * kThreads;
        if (col < p.dqk) acc_k[j] = fmaf(ds[i], p.q[r * p.dqk + col], acc_k[j]);
        if (col < p.dv_dim) acc_v[j] = fmaf(prob[i], p.dout[r * p.dv_dim + col], acc_v[j]);
      }
    }
    __syncthreads();
  }
#pragma unroll
  for (int j = 0; j < kPerThread; ++j) {
    const int col = threadIdx.x + j * kThreads;
    if (col < p.dqk) p.dk[kv_row * p.dqk + col] = p.scale * acc_k[j];
    if (col < p.dv_dim) p.dv[kv_row * p.dv_dim + col] = acc_v[j];
  }
}

GenericParams params_of(const AttentionShape& s, float scale) {
  CRUCIBLE_CHECK(s.dqk <= kGenericMaxDim && s.dv <= kGenericMaxDim, "attention (CUDA, FP32 fallback): head dims dqk = ",
                 s.dqk, ", dv = ", s.dv, " exceed ", kGenericMaxDim);
  CRUCIBLE_CHECK(s.T < (std::int64_t{1} << 31) && s.Hq <= 65535 && s.Hkv <= 65535,
                 "attention (CUDA, FP32 fallback): T = ", s.T, ", Hq = ", s.Hq, " exceed the grid");
  GenericParams p{};
  p.T = static_cast<int>(s.T);
  p.Hq = static_cast<int>(s.Hq);
  p.Hkv = static_cast<int>(s.Hkv);
  p.group = static_cast<int>(s.Hq / s.Hkv);
  p.n_seq = static_cast<int>(s.n_seq);
  p.dqk = static_cast<int>(s.dqk);
  p.dv_dim = static_cast<int>(s.dv);
  p.scale = scale;
  return p;
}

}  // namespace

void attention_forward_generic(const float* q, const float* k, const float* v, const std::int32_t* cu_seqlens,
                               const AttentionShape& s, float scale, float* out, float* lse, void* stream) {
  GenericParams p = params_of(s, scale);
  if (s.T == 0 || s.n_seq == 0) return;
  p.q = q, p.k = k, p.v = v, p.cu = cu_seqlens, p.out = out, p.lse_out = lse;
  const dim3 grid(static_cast<unsigned>(s.T), static_cast<unsigned>(s.Hq));
  generic_forward_kernel<<<grid, kThreads, 0, static_cast<cudaStream_t>(stream)>>>(p);
  CHECK_CUDA_LAUNCH();
}

void attention_backward_generic(const float* dout, const float* q, const float* k, const float* v, const float* out,
                                const float* lse, const std::int32_t* cu_seqlens, const AttentionShape& s,
                                float scale, float* dq, float* dk, float* dv, void* stream) {
  GenericParams p = params_of(s, scale);
  if (s.T == 0 || s.n_seq == 0) return;
  auto st = static_cast<cudaStream_t>(stream);
  const std::int64_t rows = s.T * s.Hq;
  float* delta = nullptr;  // [T, Hq], stream-ordered scratch
  CHECK_CUDA(cudaMallocAsync(reinterpret_cast<void**>(&delta), static_cast<std::size_t>(rows) * sizeof(float), st));
  generic_delta_kernel<<<static_cast<unsigned>((rows + kThreads - 1) / kThreads), kThreads, 0, st>>>(
      dout, out, delta, rows, static_cast<int>(s.dv));
  CHECK_CUDA_LAUNCH();
  p.q = q, p.k = k, p.v = v, p.dout = dout, p.lse = lse, p.delta = delta, p.cu = cu_seqlens;
  p.dq = dq, p.dk = dk, p.dv = dv;
  generic_dq_kernel<<<dim3(static_cast<unsigned>(s.T), static_cast<unsigned>(s.Hq)), kThreads, 0, st>>>(p);
  CHECK_CUDA_LAUNCH();
  generic_dkdv_kernel<<<dim3(static_cast<unsigned>(s.T), static_cast<unsigned>(s.Hkv)), kThreads, 0, st>>>(p);
  CHECK_CUDA_LAUNCH();
  CHECK_CUDA(cudaFreeAsync(delta, st));
}

}  // namespace crucible::cuda
