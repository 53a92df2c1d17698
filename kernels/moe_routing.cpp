// kernels/moe_routing.cpp: validation and device dispatch of DeepSeekMoE routing, expert
// counts, permutation and combine (kernels/moe_routing.h).
//
// Each op checks dtypes, shapes, the routing parameters and that its tensors share one
// device, then runs the CPU reference (kernels/cpu/moe_routing.cpp) or the CUDA twin
// (kernels/cuda/moe_routing.cu, moe_permute.cu). Checks that read values (expert
// indices, positions in range) belong to the backends: the CPU throws naming the value,
// the CUDA kernels print it and trap.
#include "kernels/moe_routing.h"

#include "core/error.h"
#include "kernels/cpu/moe_routing_cpu.h"
#include "kernels/op_checks.h"
#ifdef CRUCIBLE_WITH_CUDA
#include "kernels/cuda/moe_routing_cuda.h"
#endif

namespace crucible::ops {

namespace {

using detail::check_tensor;
using detail::describe;
using detail::device_of;
using detail::ptr;
using detail::ptr_out;

void check_params(const RoutingParams& p, std::int64_t E, const char* op) {
  CRUCIBLE_CHECK(p.top_k >= 1 && p.top_k <= E, op, ": top_k = ", p.top_k, " must lie in [1, E = ", E, "]");
  if (!p.group_limited) return;
  CRUCIBLE_CHECK(p.n_group >= 1 && E % p.n_group == 0, op, ": n_group = ", p.n_group,
                 " must divide the number of experts E = ", E);
  CRUCIBLE_CHECK(p.topk_group >= 1 && p.topk_group <= p.n_group, op, ": topk_group = ", p.topk_group,
                 " must lie in [1, n_group = ", p.n_group, "]");
  CRUCIBLE_CHECK(p.top_k <= p.topk_group * (E / p.n_group), op, ": top_k = ", p.top_k, " exceeds the ",
                 p.topk_group * (E / p.n_group), " experts of the ", p.topk_group, " kept groups");
}

#ifdef CRUCIBLE_WITH_CUDA
cuda::RouteConfig route_config(const RoutingParams& p, std::int64_t E, const char* op) {
  CRUCIBLE_CHECK(E <= cuda::kMaxRouteExperts, op, ": the CUDA router takes at most ", cuda::kMaxRouteExperts,
                 " experts, got E = ", E);
  cuda::RouteConfig c;
  c.top_k = p.top_k;
  c.n_group = p.group_limited ? p.n_group : 1;
  c.topk_group = p.group_limited ? p.topk_group : 1;
  c.sigmoid = p.sigmoid;
  c.norm_topk_prob = p.norm_topk_prob;
  c.routed_scaling_factor = p.routed_scaling_factor;
  return c;
}
#endif

// topk_idx [T, k] i32 on dev.
void check_topk_idx(const Tensor& topk_idx, Device dev, const char* op) {
  check_tensor(topk_idx, dev, op, "topk_idx", DType::I32);
  CRUCIBLE_CHECK(topk_idx.rank() == 2, op, ": ", describe(topk_idx, "topk_idx"), " must be [T, k]");
}

}  // namespace

void moe_route_forward(const Tensor& logits, const Tensor& bias, const RoutingParams& p, Tensor& scores,
                       Tensor& topk_idx, Tensor& topk_w, const Stream& stream) {
  const char* op = "moe_route_forward";
  const Device dev = device_of(logits, op, "logits");
  check_tensor(logits, dev, op, "logits", DType::F32);
  CRUCIBLE_CHECK(logits.rank() == 2, op, ": ", describe(logits, "logits"), " must be [T, E]");
  const std::int64_t T = logits.dim(0), E = logits.dim(1), K = p.top_k;
  check_params(p, E, op);
  if (bias.defined()) check_tensor(bias, dev, op, "bias", DType::F32, Shape{E});
  check_tensor(scores, dev, op, "scores", DType::F32, Shape{T, E});
  check_tensor(topk_idx, dev, op, "topk_idx", DType::I32, Shape{T, K});
  check_tensor(topk_w, dev, op, "topk_w", DType::F32, Shape{T, K});
  if (dev.is_cpu()) return cpu::moe_route_forward(logits, bias, p, scores, topk_idx, topk_w);
#ifdef CRUCIBLE_WITH_CUDA
  cuda::moe_route_forward(ptr<float>(logits), bias.defined() ? ptr<float>(bias) : nullptr, route_config(p, E, op),
                          ptr_out<float>(scores), ptr_out<std::int32_t>(topk_idx), ptr_out<float>(topk_w), T, E,
                          stream.handle());
#else
  (void)stream;
  detail::fail_no_cuda(op, dev);
#endif
}

void moe_route_backward(const Tensor& dtopk_w, const Tensor& scores, const Tensor& topk_idx, const RoutingParams& p,
                        Tensor& dlogits, const Stream& stream) {
  const char* op = "moe_route_backward";
  const Device dev = device_of(scores, op, "scores");
  check_tensor(scores, dev, op, "scores", DType::F32);
  CRUCIBLE_CHECK(scores.rank() == 2, op, ": ", describe(scores, "scores"), " must be [T, E]");
  const std::int64_t T = scores.dim(0), E = scores.dim(1), K = p.top_k;
  check_params(p, E, op);
  check_tensor(dtopk_w, dev, op, "dtopk_w", DType::F32, Shape{T, K});
  check_tensor(topk_idx, dev, op, "topk_idx", DType::I32, Shape{T, K});
  check_tensor(dlogits, dev, op, "dlogits", DType::F32, Shape{T, E});
  if (dev.is_cpu()) return cpu::moe_route_backward(dtopk_w, scores, topk_idx, p, dlogits);
#ifdef CRUCIBLE_WITH_CUDA
  cuda::moe_route_backward(ptr<float>(dtopk_w), ptr<float>(scores), ptr<std::int32_t>(topk_idx),
                           route_config(p, E, op), ptr_out<float>(dlogits), T, E, stream.handle());
#else
  (void)stream;
  detail::fail_no_cuda(op, dev);
#endif
}

void moe_expert_counts(const Tensor& topk_idx, Tensor& counts, const Stream& stream) {
  const char* op = "moe_expert_counts";
  const Device dev = device_of(topk_idx, op, "topk_idx");
  check_topk_idx(topk_idx, dev, op);
  check_tensor(counts, dev, op, "counts", DType::I32);
  CRUCIBLE_CHECK(counts.rank() == 1 && counts.dim(0) >= 1, op, ": ", describe(counts, "counts"),
                 " must be [E >= 1]");
  if (dev.is_cpu()) return cpu::moe_expert_counts(topk_idx, counts);
#ifdef CRUCIBLE_WITH_CUDA
  cuda::moe_expert_counts(ptr<std::int32_t>(topk_idx), topk_idx.numel(), counts.dim(0),
                          ptr_out<std::int32_t>(counts), stream.handle());
#else
  (void)stream;
  detail::fail_no_cuda(op, dev);
#endif
}

void moe_permute_plan(const Tensor& topk_idx, Tensor& offsets, Tensor& rows, Tensor& position,
                      const Stream& stream) {
  const char* op = "moe_permute_plan";
  const Device dev = device_of(topk_idx, op, "topk_idx");
  check_topk_idx(topk_idx, dev, op);
  const std::int64_t T = topk_idx.dim(0), k = topk_idx.dim(1);
  CRUCIBLE_CHECK(T * k <= INT32_MAX, op, ": ", T * k, " routed pairs exceed the 32-bit row indices");
  check_tensor(offsets, dev, op, "offsets", DType::I32);
  CRUCIBLE_CHECK(offsets.rank() == 1 && offsets.dim(0) >= 2, op, ": ", describe(offsets, "offsets"),
                 " must be [E + 1] with E >= 1");
  check_tensor(rows, dev, op, "rows", DType::I32, Shape{T * k});
  check_tensor(position, dev, op, "position", DType::I32, Shape{T, k});
  if (dev.is_cpu()) return cpu::moe_permute_plan(topk_idx, offsets, rows, position);
#ifdef CRUCIBLE_WITH_CUDA
  cuda::moe_permute_plan(ptr<std::int32_t>(topk_idx), T, k, offsets.dim(0) - 1, ptr_out<std::int32_t>(offsets),
                         ptr_out<std::int32_t>(rows), ptr_out<std::int32_t>(position), stream.handle());
#else
  (void)stream;
  detail::fail_no_cuda(op, dev);
#endif
}

void moe_unpermute_combine(const Tensor& expert_out, const Tensor& position, const Tensor& topk_w, Tensor& y,
                           const Stream& stream) {
  const char* op = "moe_unpermute_combine";
  const Device dev = device_of(y, op, "y");
  check_tensor(y, dev, op, "y", DType::F32);
  CRUCIBLE_CHECK(y.rank() == 2, op, ": ", describe(y, "y"), " must be [T, H]");
  check_tensor(position, dev, op, "position", DType::I32);
  CRUCIBLE_CHECK(position.rank() == 2 && position.dim(0) == y.dim(0), op, ": ", describe(position, "position"),
                 " must be [", y.dim(0), ", k]");
  const std::int64_t T = y.dim(0), H = y.dim(1), k = position.dim(1);
  check_tensor(topk_w, dev, op, "topk_w", DType::F32, Shape{T, k});
  check_tensor(expert_out, dev, op, "expert_out", DType::F32);
  CRUCIBLE_CHECK(expert_out.rank() == 2 && expert_out.dim(1) == H, op, ": ", describe(expert_out, "expert_out"),
                 " must be [N, ", H, "]");
  if (dev.is_cpu()) return cpu::moe_unpermute_combine(expert_out, position, topk_w, y);
#ifdef CRUCIBLE_WITH_CUDA
  cuda::moe_unpermute_combine(ptr<float>(expert_out), ptr<std::int32_t>(position), ptr<float>(topk_w),
                              ptr_out<float>(y), T, k, H, expert_out.dim(0), stream.handle());
#else
  (void)stream;
  detail::fail_no_cuda(op, dev);
#endif
}

void moe_unpermute_combine_backward(const Tensor& dy, const Tensor& expert_out, const Tensor& position,
                                    const Tensor& topk_w, Tensor& dexpert_out, Tensor& dtopk_w,
                                    const Stream& stream) {
  const char* op = "moe_unpermute_combine_backward";
  const Device dev = device_of(dy, op, "dy");
  check_tensor(dy, dev, op, "dy", DType::F32);
  CRUCIBLE_CHECK(dy.rank() == 2, op, ": ", describe(dy, "dy"), " must be [T, H]");
  check_tensor(position, dev, op, "position", DType::I32);
  CRUCIBLE_CHECK(position.rank() == 2 && position.dim(0) == dy.dim(0), op, ": ", describe(position, "position"),
                 " must be [", dy.dim(0), ", k]");
  const std::int64_t T = dy.dim(0), H = dy.dim(1), k = position.dim(1);
  check_tensor(topk_w, dev, op, "topk_w", DType::F32, Shape{T, k});
  check_tensor(expert_out, dev, op, "expert_out", DType::F32);
  CRUCIBLE_CHECK(expert_out.rank() == 2 && expert_out.dim(1) == H, op, ": ", describe(expert_out, "expert_out"),
                 " must be [N, ", H, "]");
  check_tensor(dexpert_out, dev, op, "dexpert_out", DType::F32, expert_out.shape());
  check_tensor(dtopk_w, dev, op, "dtopk_w", DType::F32, Shape{T, k});
  if (dev.is_cpu())
    return cpu::moe_unpermute_combine_backward(dy, expert_out, position, topk_w, dexpert_out, dtopk_w);
#ifdef CRUCIBLE_WITH_CUDA
  cuda::moe_unpermute_combine_backward(ptr<float>(dy), ptr<float>(expert_out), ptr<std::int32_t>(position),
                                       ptr<float>(topk_w), ptr_out<float>(dexpert_out), ptr_out<float>(dtopk_w), T,
                                       k, H, expert_out.dim(0), stream.handle());
#else
  (void)stream;
  detail::fail_no_cuda(op, dev);
#endif
}

}  // namespace crucible::ops
