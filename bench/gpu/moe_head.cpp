// bench/gpu/moe_head.cpp: DeepSeekMoE routing and permutation throughput, and the fused
// vocab-chunked LM head against the bare FP32 GEMMs of the same FLOPs, at the shapes of
// tests/gpu/moe_head_cases.h.
//
// Routing: microseconds and tokens/s of each op at each routing case (forward,
// backward, counts, permutation plan, the expert-input gather [T k, H], the weighted
// combine and its backward). Head: forward (1 GEMM of 2 T V D FLOPs per pass) and
// backward (3 such GEMMs: recompute, dh, dw) against cuBLASLt FP32 GEMMs of the same
// shapes without chunking or the head's small kernels, measured in the same run:
// ratio = head time / bare GEMM time (1.00 = the head costs nothing beyond its GEMMs).
// A third table times the BF16 head at the h100 teacher's shape for several vocab chunks.
// Every figure is the median of `iters` runs, each timed with its own pair of CUDA events.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "core/cuda_check.h"
#include "kernels/cuda/gemm_cublaslt.h"
#include "kernels/logprob_head.h"
#include "kernels/moe_routing.h"
#include "kernels/tensor_ops.h"
#include "tests/gpu/gpu_random.h"
#include "tests/gpu/moe_head_cases.h"

using namespace crucible;
namespace cases = crucible::gpu_cases;

namespace {

const Device kGpu = Device::cuda(0);

// Median over `iters` runs of f (after one warm-up), in milliseconds.
double median_ms(const std::function<void()>& f, int iters) {
  f();
  CHECK_CUDA(cudaDeviceSynchronize());
  std::vector<cudaEvent_t> ev(2 * iters);
  for (cudaEvent_t& e : ev) CHECK_CUDA(cudaEventCreate(&e));
  for (int i = 0; i < iters; ++i) {
    CHECK_CUDA(cudaEventRecord(ev[2 * i]));
    f();
    CHECK_CUDA(cudaEventRecord(ev[2 * i + 1]));
  }
  CHECK_CUDA(cudaEventSynchronize(ev.back()));
  std::vector<float> ms(iters);
  for (int i = 0; i < iters; ++i) CHECK_CUDA(cudaEventElapsedTime(&ms[i], ev[2 * i], ev[2 * i + 1]));
  for (cudaEvent_t& e : ev) cudaEventDestroy(e);
  std::sort(ms.begin(), ms.end());
  return iters % 2 ? ms[iters / 2] : 0.5 * (ms[iters / 2 - 1] + ms[iters / 2]);
}

Tensor gpu_uniform(Shape shape, std::uint64_t seed, const char* name, float lo = -1.0f, float hi = 1.0f) {
  return gpu_test::uniform_tensor(shape, seed, name, lo, hi).to(kGpu);
}

void route_row(const std::string& op, std::int64_t tokens, double ms) {
  std::printf("  %-28s %10.1f %12.1f\n", op.c_str(), ms * 1e3, tokens / (ms * 1e-3) / 1e6);
}

void bench_routing(int iters) {
  std::printf("%-30s %10s %12s\n", "routing op", "us", "Mtokens/s");
  std::uint64_t seed = 1;
  for (const cases::RouteCase& c : cases::kRouteCases) {
    if (c.tokens < 1000) continue;  // the odd shapes are for the tests
    const std::int64_t T = c.tokens, E = c.experts, K = c.top_k, H = c.hidden, N = T * K;
    ops::RoutingParams p;
    p.top_k = K, p.n_group = c.n_group, p.topk_group = c.topk_group, p.sigmoid = c.sigmoid;
    p.group_limited = c.group_limited, p.norm_topk_prob = c.norm_topk_prob;
    p.routed_scaling_factor = c.routed_scaling_factor;
    std::printf("%s\n", c.name);
    const Tensor logits = gpu_uniform(Shape{T, E}, seed++, "logits", -4.0f, 4.0f);
    const Tensor bias = c.bias ? gpu_uniform(Shape{E}, seed++, "bias", -0.1f, 0.1f) : Tensor();
    Tensor scores(Shape{T, E}, DType::F32, kGpu, "scores"), idx(Shape{T, K}, DType::I32, kGpu, "topk_idx"),
        w(Shape{T, K}, DType::F32, kGpu, "topk_w");
    route_row("forward", T, median_ms([&] { ops::moe_route_forward(logits, bias, p, scores, idx, w); }, iters));
    const Tensor dw = gpu_uniform(Shape{T, K}, seed++, "dtopk_w");
    Tensor dl(Shape{T, E}, DType::F32, kGpu, "dlogits");
    route_row("backward", T, median_ms([&] { ops::moe_route_backward(dw, scores, idx, p, dl); }, iters));
    Tensor counts(Shape{E}, DType::I32, kGpu, "counts");
    route_row("expert counts", T, median_ms([&] { ops::moe_expert_counts(idx, counts); }, iters));
    Tensor off(Shape{E + 1}, DType::I32, kGpu, "offsets"), rows(Shape{N}, DType::I32, kGpu, "rows"),
        pos(Shape{T, K}, DType::I32, kGpu, "position");
    route_row("permute plan", T, median_ms([&] { ops::moe_permute_plan(idx, off, rows, pos); }, iters));
    const Tensor x = gpu_uniform(Shape{T, H}, seed++, "x");
    Tensor xp(Shape{N, H}, DType::F32, kGpu, "x_perm");
    route_row("gather [T k, H]", T, median_ms([&] { ops::gather_rows(x, rows, xp); }, iters));
    Tensor y(Shape{T, H}, DType::F32, kGpu, "y");
    route_row("combine", T, median_ms([&] { ops::moe_unpermute_combine(xp, pos, w, y); }, iters));
    Tensor dxp(Shape{N, H}, DType::F32, kGpu, "dx_perm"), dwt(Shape{T, K}, DType::F32, kGpu, "dtopk_w");
    route_row("combine backward", T,
              median_ms([&] { ops::moe_unpermute_combine_backward(y, xp, pos, w, dxp, dwt); }, iters));
  }
}

// A head pass's tensors on the GPU: h [T, D], w [V, D] uniform in (-a, a), random targets,
// dlogp, and the outputs.
struct HeadTensors {
  Tensor h, w, targets, dlogp, logp, lse, none, dh, dw;
  HeadTensors(std::int64_t T, std::int64_t D, std::int64_t V, float a, std::uint64_t seed)
      : h(gpu_uniform(Shape{T, D}, seed, "h")),
        w(gpu_uniform(Shape{V, D}, seed + 1, "w", -a, a)),
        dlogp(gpu_uniform(Shape{T}, seed + 3, "dlogp")),
        logp(Shape{T}, DType::F32, kGpu, "logp"),
        lse(Shape{T}, DType::F32, kGpu, "lse"),
        dh(Shape{T, D}, DType::F32, kGpu, "dh"),
        dw(Shape{V, D}, DType::F32, kGpu, "dw") {
    Tensor t(Shape{T}, DType::I32, Device::cpu(), "targets");
    gpu_test::SplitMix rng{seed + 2};
    for (std::int32_t& v : t.span<std::int32_t>()) v = static_cast<std::int32_t>(rng.below(V));
    targets = t.to(kGpu);
  }
  double forward_ms(const ops::LogprobHeadOptions& opts, int iters) {
    return median_ms([&] { ops::logprob_head_forward(h, w, targets, logp, lse, none, opts); }, iters);
  }
  double backward_ms(const ops::LogprobHeadOptions& opts, int iters) {
    return median_ms([&] { ops::logprob_head_backward(dlogp, h, w, targets, lse, dh, dw, opts); }, iters);
  }
};

void bench_head(int iters) {
  const cases::HeadCase& c = cases::kHeadCases[0];
  const std::int64_t T = c.tokens, D = c.hidden, V = c.vocab;
  std::printf("\nlogprob head %s, FP32\n", c.name);
  std::printf("  %-28s %10s %10s %10s %8s\n", "pass", "head ms", "GEMM ms", "TFLOP/s", "ratio");
  HeadTensors t(T, D, V, 9.0f / 84.7f, 11);  // logits of std ~3 at D = 7168
  ops::LogprobHeadOptions opts;
  opts.chunk = c.chunk;
  const double fwd = t.forward_ms(opts, iters);
  const double bwd = t.backward_ms(opts, iters);
  const Tensor &h = t.h, &w = t.w;

  // The bare GEMMs: logits [T, V] = h w^T; dh = g w; dw += g^T h with g [T, V].
  Tensor logits(Shape{T, V}, DType::F32, kGpu, "logits");
  const cuda::GemmOperand hop{h.raw(), DType::F32}, wop{w.raw(), DType::F32}, gop{logits.raw(), DType::F32};
  auto* lg = static_cast<float*>(logits.raw());
  auto* dhp = static_cast<float*>(t.dh.raw());
  auto* dwp = static_cast<float*>(t.dw.raw());
  const double g_fwd = median_ms([&] { cuda::gemm_rowmajor(false, true, T, V, D, hop, wop, lg, 0.0f, nullptr); }, iters);
  const double g_bwd = median_ms(
      [&] {
        cuda::gemm_rowmajor(false, true, T, V, D, hop, wop, lg, 0.0f, nullptr);
        cuda::gemm_rowmajor(false, false, T, D, V, gop, wop, dhp, 0.0f, nullptr);
        cuda::gemm_rowmajor(true, false, V, D, T, gop, hop, dwp, 1.0f, nullptr);
      },
      iters);
  const double flop = 2.0 * T * V * D;
  auto row = [&](const char* pass, double head_ms, double gemm_ms, double gemms) {
    std::printf("  %-28s %10.2f %10.2f %10.1f %8.3f\n", pass, head_ms, gemm_ms, gemms * flop / (head_ms * 1e-3) / 1e12,
                head_ms / gemm_ms);
  };
  row("forward (1 GEMM)", fwd, g_fwd, 1);
  row("backward (3 GEMMs)", bwd, g_bwd, 3);
  row("forward + backward", fwd + bwd, g_fwd + g_bwd, 4);
}

// The BF16 head (the h100 teacher's: T 8192, D 1024, V 129280, as in bench_gpu_model_step)
// at several vocab chunks: a chunk's FP32 logits [T, chunk] fit the 50 MB L2 below 1536.
void bench_head_chunks(int iters) {
  const std::int64_t T = 8192, D = 1024, V = 129280;
  std::printf("\nlogprob head BF16, T %lld, D %lld, V %lld: ms per pass by vocab chunk\n", static_cast<long long>(T),
              static_cast<long long>(D), static_cast<long long>(V));
  std::printf("  %8s %10s %10s %10s\n", "chunk", "forward", "backward", "total");
  HeadTensors t(T, D, V, 0.1f, 21);
  for (std::int64_t chunk : {512, 1024, 2048, 4096, 8192}) {
    ops::LogprobHeadOptions opts;
    opts.chunk = chunk;
    opts.bf16 = true;
    const double fwd = t.forward_ms(opts, iters);
    const double bwd = t.backward_ms(opts, iters);
    std::printf("  %8lld %10.2f %10.2f %10.2f\n", static_cast<long long>(chunk), fwd, bwd, fwd + bwd);
  }
}

}  // namespace

int main(int argc, char** argv) {
  // --head-chunks: only the BF16 head's chunk table.
  if (argc > 1 && std::string(argv[1]) == "--head-chunks") {
    bench_head_chunks(5);
    return 0;
  }
  bench_routing(21);
  bench_head(5);
  bench_head_chunks(5);
  return 0;
}
