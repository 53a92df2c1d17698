// kernels/cuda/moe_routing.cu: DeepSeekMoE routing on the GPU, forward and backward.
//
// The CUDA twin of moe_route_forward/backward in kernels/cpu/moe_routing.cpp. One warp
// per token (4 tokens per 128-thread block); the token's scores and biased scores live
// in shared memory (E <= kMaxRouteExperts).
//
// Forward, per token, the CPU's formulas in the CPU's order:
//   scores   sigmoid: 1 / (1 + exp(-l));  softmax: exp(l - max) * (float)(1 / sum), the
//            sum in FP64. exp is evaluated in FP64 and rounded once to FP32, which is the
//            correctly rounded expf; the host's glibc expf is within 0.502 ulp, so the two
//            can differ by one ulp when exp(x) lies within ~0.002 ulp of a rounding
//            midpoint (rare; tests/gpu/test_moe_routing.cpp counts them).
//   groups   lane g scans group g ascending and keeps its top-2 (ties: lower index),
//            group score = (0 + best) + second (sigmoid) or 0 + best (softmax): the
//            CPU's float additions.
//   top-k    topk_group groups, then k experts among the kept groups, each chosen by a
//            warp argmax under the CPU's total order (higher biased score first, then
//            lower index) restricted to the elements ranked after the previous pick, so
//            the r-th pick is the CPU's r-th (its partial_sort has the same strict order).
//   weights  lane 0 in the CPU's order: sum of picks, 1 / (sum + 1e-20), w * norm * rsf.
// With equal scores the GPU picks the CPU's experts and writes the CPU's weights bit for
// bit; only the scores' exp can differ (above), which moves a weight by a few ulp and
// can flip a selection only at a near-tie within that ulp.
//
// Backward, per token: lane 0 forms the normalization's float sum and FP64 dot in slot
// order; each lane accumulates ds for its experts over the slots in slot order and
// writes dl = ds s (1 - s) (sigmoid) or s (ds - dot) (softmax, dot over the chosen
// experts in ascending expert order: the CPU's order, whose other terms are exact
// zeros). Every FP64 operation is spelled with __d*_rn where nvcc would otherwise
// contract a multiply-add into an FMA that the CPU does not do, so dlogits matches the
// CPU bit for bit.
//
// NOTE: tiny and latency bound (T x E x 4 bytes in and out: 4 MiB at DeepSeek-V3's
// T = 4096, E = 256); one warp per token keeps every reduction in registers and
// shuffles, with no block-wide barrier.
#include <cuda_runtime.h>

#include "core/cuda_check.h"
#include "kernels/cuda/device_utils.cuh"
#include "kernels/cuda/moe_routing_cuda.h"

namespace crucible::cuda {

namespace {

using detail::ceil_div;
using detail::kWarp;

constexpr int kWarpsPerBlock = 4;
constexpr unsigned kFull = 0xffffffffu;

// The CPU's ranking (RanksBefore): a before b when higher, ties to the lower index.
// Index -1 is "none", ranked after everything.
__device__ __forceinline__ bool ranks_before(float a, int ia, float b, int ib) {
  return ib < 0 || (ia >= 0 && (a > b || (a == b && ia < ib)));
}

// Reduces each lane's (v, i) to the warp's best; every lane returns it.
__device__ __forceinline__ void warp_best(float& v, int& i) {
#pragma unroll
  for (int offset = kWarp / 2; offset > 0; offset /= 2) {
    const float ov = __shfl_xor_sync(kFull, v, offset);
    const int oi = __shfl_xor_sync(kFull, i, offset);
    if (ranks_before(ov, oi, v, i)) v = ov, i = oi;
  }
}

// Among v[0, n) with allowed(e), the best element ranked after (pv, pi) (pi = -1: no
// previous pick). Returns its index (-1 when none), the same on every lane.
template <typename Allowed>
__device__ __forceinline__ int warp_pick_after(const float* v, int n, float pv, int pi, Allowed allowed) {
  const int lane = threadIdx.x % kWarp;
  float best = 0.0f;
  int best_i = -1;
  for (int e = lane; e < n; e += kWarp) {
    if (!allowed(e)) continue;
    const float x = v[e];
    if (pi >= 0 && !ranks_before(pv, pi, x, e)) continue;  // already picked
    if (ranks_before(x, e, best, best_i)) best = x, best_i = e;
  }
  warp_best(best, best_i);
  return best_i;
}

// exp rounded once from FP64: the correctly rounded expf (see the file comment).
__device__ __forceinline__ float exp_rn(float x) { return static_cast<float>(exp(static_cast<double>(x))); }

// One warp per token. Dynamic shared memory per warp: s [E], sel [E], gscore [G], kept [G].
__global__ void __launch_bounds__(kWarpsPerBlock* kWarp)
    moe_route_forward_kernel(const float* __restrict__ logits, const float* __restrict__ bias, RouteConfig c,
                             float* __restrict__ scores, std::int32_t* __restrict__ topk_idx,
                             float* __restrict__ topk_w, std::int64_t T, int E) {
  extern __shared__ float smem[];
  const int warp = threadIdx.x / kWarp, lane = threadIdx.x % kWarp;
  const std::int64_t t = static_cast<std::int64_t>(blockIdx.x) * kWarpsPerBlock + warp;
  if (t >= T) return;  // whole warps exit together
  const int G = static_cast<int>(c.n_group), gsize = E / G, K = static_cast<int>(c.top_k);
  float* s = smem + static_cast<std::int64_t>(warp) * (2 * E + 2 * G);
  float* sel = s + E;
  float* gscore = sel + E;
  float* kept = gscore + G;  // 1 when the group is kept
  const float* l = logits + t * E;

  if (c.sigmoid) {
    for (int e = lane; e < E; e += kWarp) s[e] = 1.0f / (1.0f + exp_rn(-l[e]));
  } else {
    float m = -INFINITY;
    for (int e = lane; e < E; e += kWarp) m = fmaxf(m, l[e]);
#pragma unroll
    for (int offset = kWarp / 2; offset > 0; offset /= 2) m = fmaxf(m, __shfl_xor_sync(kFull, m, offset));
    double sum = 0;
    for (int e = lane; e < E; e += kWarp) {
      s[e] = exp_rn(l[e] - m);
      sum += s[e];
    }
    sum = detail::warp_sum(sum);
    const float inv = static_cast<float>(1.0 / sum);
    for (int e = lane; e < E; e += kWarp) s[e] *= inv;
  }
  for (int e = lane; e < E; e += kWarp) {
    scores[t * E + e] = s[e];
    sel[e] = bias ? s[e] + bias[e] : s[e];
  }
  __syncwarp();

  if (G > 1) {
    for (int g = lane; g < G; g += kWarp) {
      float b1 = 0.0f, b2 = 0.0f;
      int i1 = -1, i2 = -1;
      for (int e = g * gsize; e < (g + 1) * gsize; ++e) {
        const float x = sel[e];
        if (ranks_before(x, e, b1, i1)) {
          b2 = b1, i2 = i1;
          b1 = x, i1 = e;
        } else if (ranks_before(x, e, b2, i2)) {
          b2 = x, i2 = e;
        }
      }
      float gs = 0.0f + b1;
      if (c.sigmoid && gsize >= 2) gs = gs + b2;
      gscore[g] = gs;
      kept[g] = 0.0f;
    }
    __syncwarp();
    float pv = 0.0f;
    int pi = -1;
    for (int r = 0; r < c.topk_group; ++r) {
      pi = warp_pick_after(gscore, G, pv, pi, [](int) { return true; });
      pv = gscore[pi];
      if (lane == 0) kept[pi] = 1.0f;
    }
    __syncwarp();
  }

  float pv = 0.0f, sum = 0.0f;
  int pi = -1;
  std::int32_t* idx = topk_idx + t * K;
  float* w = topk_w + t * K;
  for (int r = 0; r < K; ++r) {
    pi = warp_pick_after(sel, E, pv, pi, [&](int e) { return G == 1 || kept[e / gsize] != 0.0f; });
    pv = sel[pi];
    if (lane == 0) {
      idx[r] = pi;
      w[r] = s[pi];
      sum += s[pi];
    }
  }
  if (lane == 0) {
    const float norm = c.norm_topk_prob ? 1.0f / (sum + 1e-20f) : 1.0f;
    for (int r = 0; r < K; ++r) w[r] = w[r] * norm * c.routed_scaling_factor;
  }
}

// dL/dscore of expert e: the slots choosing e, in slot order, as the CPU adds them.
__device__ __forceinline__ double score_grad(int e, const std::int32_t* id, const float* g, int K, bool norm,
                                             double rsf, double S, double dot) {
  double ds = 0.0;
  for (int j = 0; j < K; ++j) {
    if (id[j] != e) continue;
    const double term = norm ? __dsub_rn(static_cast<double>(g[j]) / S, dot / (S * S)) : static_cast<double>(g[j]);
    ds = __dadd_rn(ds, __dmul_rn(rsf, term));
  }
  return ds;
}

__global__ void __launch_bounds__(kWarpsPerBlock* kWarp)
    moe_route_backward_kernel(const float* __restrict__ dtopk_w, const float* __restrict__ scores,
                              const std::int32_t* __restrict__ topk_idx, RouteConfig c,
                              float* __restrict__ dlogits, std::int64_t T, int E) {
  const int warp = threadIdx.x / kWarp, lane = threadIdx.x % kWarp;
  const std::int64_t t = static_cast<std::int64_t>(blockIdx.x) * kWarpsPerBlock + warp;
  if (t >= T) return;
  const int K = static_cast<int>(c.top_k);
  const float* s = scores + t * E;
  const float* g = dtopk_w + t * K;
  const std::int32_t* id = topk_idx + t * K;
  const double rsf = c.routed_scaling_factor;
  double S = 1.0, dot = 0.0;
  if (lane == 0) {
    for (int j = 0; j < K; ++j)
      if (id[j] < 0 || id[j] >= E)
        CRUCIBLE_DEVICE_FAIL("moe_route_backward: topk_idx[%lld, %d] = %d is not an expert in [0, %d)\n",
                             static_cast<long long>(t), j, id[j], E);
    if (c.norm_topk_prob) {
      float sum = 0.0f;  // the forward's denominator, in the forward's order
      for (int j = 0; j < K; ++j) sum += s[id[j]];
      S = static_cast<double>(sum + 1e-20f);
      for (int j = 0; j < K; ++j) dot = __dadd_rn(dot, __dmul_rn(static_cast<double>(g[j]), s[id[j]]));
    }
  }
  S = __shfl_sync(kFull, S, 0);
  dot = __shfl_sync(kFull, dot, 0);
  float* d = dlogits + t * E;
  if (c.sigmoid) {
    for (int e = lane; e < E; e += kWarp) {
      const double se = s[e];
      const double ds = score_grad(e, id, g, K, c.norm_topk_prob, rsf, S, dot);
      d[e] = static_cast<float>(__dmul_rn(__dmul_rn(ds, se), 1.0 - se));
    }
    return;
  }
  // Softmax: dl_e = s_e (ds_e - sum_m ds_m s_m), the sum over the distinct chosen experts
  // in ascending order (lane 0), as the CPU's loop over all E adds them.
  double sdot = 0.0;
  if (lane == 0) {
    int last = -1;
    for (int r = 0; r < K; ++r) {
      int next = E;
      for (int j = 0; j < K; ++j)
        if (id[j] > last && id[j] < next) next = id[j];
      if (next == E) break;
      const double ds = score_grad(next, id, g, K, c.norm_topk_prob, rsf, S, dot);
      sdot = __dadd_rn(sdot, __dmul_rn(ds, static_cast<double>(s[next])));
      last = next;
    }
  }
  sdot = __shfl_sync(kFull, sdot, 0);
  for (int e = lane; e < E; e += kWarp) {
    const double se = s[e];
    const double ds = score_grad(e, id, g, K, c.norm_topk_prob, rsf, S, dot);
    d[e] = static_cast<float>(__dmul_rn(se, __dsub_rn(ds, sdot)));
  }
}

}  // namespace

void moe_route_forward(const float* logits, const float* bias, const RouteConfig& c, float* scores,
                       std::int32_t* topk_idx, float* topk_w, std::int64_t T, std::int64_t E, void* stream) {
  if (T == 0) return;
  const std::size_t smem = static_cast<std::size_t>(kWarpsPerBlock) * (2 * E + 2 * c.n_group) * sizeof(float);
  if (smem > 48 * 1024)
    CHECK_CUDA(cudaFuncSetAttribute(moe_route_forward_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                    static_cast<int>(smem)));
  const auto grid = static_cast<unsigned>(ceil_div(T, kWarpsPerBlock));
  moe_route_forward_kernel<<<grid, kWarpsPerBlock * kWarp, smem, static_cast<cudaStream_t>(stream)>>>(
      logits, bias, c, scores, topk_idx, topk_w, T, static_cast<int>(E));
  CHECK_CUDA_LAUNCH();
}

void moe_route_backward(const float* dtopk_w, const float* scores, const std::int32_t* topk_idx,
                        const RouteConfig& c, float* dlogits, std::int64_t T, std::int64_t E, void* stream) {
  if (T == 0) return;
  const auto grid = static_cast<unsigned>(ceil_div(T, kWarpsPerBlock));
  moe_route_backward_kernel<<<grid, kWarpsPerBlock * kWarp, 0, static_cast<cudaStream_t>(stream)>>>(
      dtopk_w, scores, topk_idx, c, dlogits, T, static_cast<int>(E));
  CHECK_CUDA_LAUNCH();
}

}  // namespace crucible::cuda
