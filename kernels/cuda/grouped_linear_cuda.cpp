// kernels/cuda/grouped_linear_cuda.cpp: grouped linear forward/backward on CUDA tensors
// (contracts in kernels/grouped_linear.h, mapping in the header): operand preparation and
// problem lists for the FP8 and BF16 grouped GEMMs (one or two weight lists over the same
// input: the pair ops), and the per-group cuBLASLt loop.
//
// Invariant: every temporary (FP8 codes and scales, BF16 operands, the problem lists) is a
// DeviceScratch on the op's stream: the ops are stream-ordered and never synchronize the
// host.
#include "kernels/cuda/grouped_linear_cuda.h"

#include <algorithm>
#include <optional>
#include <vector>

#include "core/cuda_check.h"
#include "core/error.h"
#include "kernels/cuda/fp8_quantize_cuda.h"
#include "kernels/cuda/gemm_cublaslt.h"
#include "kernels/cuda/gemm_prep_cuda.h"
#include "kernels/cuda/grouped_linear_bf16_cuda.h"
#include "kernels/cuda/grouped_linear_fp8_cuda.h"
#include "kernels/cuda/linear_cuda.h"
#include "kernels/cuda/stream_fan.h"
#include "kernels/cuda/weight_cache.h"

namespace crucible::cuda {

namespace {

using ops::GemmPrecision;

std::int64_t round_up(std::int64_t a, std::int64_t b) { return (a + b - 1) / b * b; }

cudaStream_t stream_on(const Stream& stream, Device device, const char* op) {
  CRUCIBLE_CHECK(stream.device().is_cpu() || stream.device() == device, op, ": the stream is on ",
                 stream.device().str(), " but the tensors are on ", device.str());
  return static_cast<cudaStream_t>(stream.handle());  // CPU stream: the legacy default stream
}

const float* f32(const Tensor& t) { return static_cast<const float*>(t.raw()); }
float* f32_mut(const Tensor& t) { return static_cast<float*>(t.raw()); }

std::int32_t i32(std::int64_t v, const char* what) {
  CRUCIBLE_CHECK(v < (std::int64_t{1} << 31), "grouped linear (fp8): ", what, " = ", v,
                 " exceeds the grouped GEMM's 32-bit sizes");
  return static_cast<std::int32_t>(v);
}

// An FP8 operand [rows, k] quantized by quantize_gemm_operand (rows padded to 4, K to 16):
// codes [rows_p, k_p], scales Vec128 [Lp, rows_p] (1x128 tiles) or Block128x128
// [ceil(rows_p / 128), L4].
Fp8GemmInput quantize(const float* x, std::int64_t rows, std::int64_t k, ScaleLayout layout, cudaStream_t st) {
  return quantize_gemm_operand(x, rows, k, layout, round_up(rows, 4), round_up(k, 16), st);
}

// Problem operand A (1x128 tiles) starting at row r0 of a quantized operand.
void set_a(Fp8GroupedProblem& q, const Fp8GemmInput& in, std::int64_t r0) {
  q.a = static_cast<const std::uint8_t*>(in.q.get()) + r0 * in.k_p;
  q.lda = in.k_p;
  q.a_scale = in.scale.as<float>() + r0;  // Vec128: [Lp, rows_p], rows contiguous
  q.a_scale_row = 1;
  q.a_scale_kb = in.rows_p;
}

// Problem operand B: weight g of a group quantized in 128x128 blocks.
void set_b(Fp8GroupedProblem& q, const Fp8WeightGroup& wg, std::size_t g) {
  q.b = wg.codes(g);
  q.ldb = wg.k_p;
  q.b_scale = wg.scales(g);
  q.b_scale_group = static_cast<std::int32_t>(kFp8BlockSize);
  q.b_scale_row = wg.L4();
  q.b_scale_kb = 1;
}

// Dgrad over weight lists: dgrad(j, beta) for every list j with N_j > 0, the first writing dx
// (beta 0) and each later one adding to it (beta 1); dx zero-filled when no list has
// columns. Nothing when dx is undefined or empty.
template <class Dgrad>
void dgrad_lists(std::span<const Tensor* const> dy, Tensor& dx, cudaStream_t st, Dgrad&& dgrad) {
  if (!dx.defined() || dx.numel() == 0) return;
  bool written = false;
  for (std::size_t j = 0; j < dy.size(); ++j) {
    if (dy[j]->dim(1) == 0) continue;
    dgrad(j, written ? 1.0f : 0.0f);
    written = true;
  }
  if (!written) CHECK_CUDA(cudaMemsetAsync(dx.raw(), 0, static_cast<std::size_t>(dx.nbytes()), st));
}

// Group g's problem over rows [r0, r0 + n) of a 1x128-tiled operand and weight g of a
// group: c_g [n, C] (+)= a_g [n, K] B_g^T, C = c's columns. Fprop: a = x, B = W (c = y);
// Dgrad: a = dy, B = W^T (c = dx, K = N).
// The output side of either precision's rows problem: c_g = rows [r0, r0 + n) of c [M, C],
// C = c's columns, a product over K.
template <class Problem>
void set_rows_c(Problem& q, const Tensor& c, std::int64_t r0, std::int64_t n, std::int64_t K, float beta) {
  const std::int64_t C = c.dim(1);
  q.c = f32_mut(c) + r0 * C;
  q.ldc = C;
  q.M = i32(n, "group rows");
  q.N = i32(C, "output columns");
  q.K = i32(K, "K");
  q.beta = beta;
}

Fp8GroupedProblem rows_problem(const Fp8GemmInput& qa, const Fp8WeightGroup& wq, std::size_t g, std::int64_t r0,
                               std::int64_t n, const Tensor& c, std::int64_t K, float beta) {
  Fp8GroupedProblem q;
  set_a(q, qa, r0);
  set_b(q, wq, g);
  set_rows_c(q, c, r0, n, K, beta);
  return q;
}

// x_g^T of every non-empty group of x [M, cols], quantized in one launch that reads x once:
// group g's codes [cols, ld_g] (ld_g = its rows rounded up to 16, zero-padded) and Vec128-style
// scales [L_g, cols], group after group. at[g] indexes `groups` (-1 for an empty group).
struct TransposedGroups {
  DeviceScratch q, scale;
  std::vector<Fp8TransposedGroup> groups;
  std::vector<int> at;
  std::int64_t cols = 0;
};

TransposedGroups quantize_groups_transposed(const Tensor& x, std::span<const std::int64_t> offsets,
                                            cudaStream_t st) {
  TransposedGroups t;
  t.cols = x.dim(1);
  std::int64_t codes = 0, scales = 0;  // per column: bytes and scale entries
  for (std::size_t g = 0; g + 1 < offsets.size(); ++g) {
    const std::int64_t r0 = offsets[g], n = offsets[g + 1] - r0;
    t.at.push_back(n == 0 ? -1 : static_cast<int>(t.groups.size()));
    if (n == 0) continue;
    const std::int64_t ld = round_up(n, 16), L = (n + kFp8BlockSize - 1) / kFp8BlockSize;
    t.groups.push_back({r0, n, codes * t.cols, ld, scales * t.cols, 1, t.cols});
    codes += ld;
    scales += L;
  }
  if (t.groups.empty() || t.cols == 0) return t;
  t.q = DeviceScratch(static_cast<std::size_t>(codes * t.cols), st);
  t.scale = DeviceScratch(static_cast<std::size_t>(scales * t.cols) * sizeof(float), st);
  quantize_fp8_transposed(f32(x), t.cols, t.groups, t.q.as<std::uint8_t>(), t.scale.as<float>(), {}, st);
  return t;
}

// The Wgrad problem of group g: dw_g [N, K] += dy_g^T x_g, both operands 1x128 tiles along
// the group's tokens.
Fp8GroupedProblem wgrad(const TransposedGroups& dyt, const TransposedGroups& xt, std::size_t g, Tensor& dw) {
  const Fp8TransposedGroup& a = dyt.groups[static_cast<std::size_t>(dyt.at[g])];
  const Fp8TransposedGroup& b = xt.groups[static_cast<std::size_t>(xt.at[g])];
  Fp8GroupedProblem q;
  q.a = dyt.q.as<std::uint8_t>() + a.code_offset;  // dy_g^T [N, n]
  q.lda = a.ld;
  q.a_scale = dyt.scale.as<float>() + a.scale_offset;
  q.a_scale_row = 1;
  q.a_scale_kb = dyt.cols;
  q.b = xt.q.as<std::uint8_t>() + b.code_offset;  // x_g^T [K, n]
  q.ldb = b.ld;
  q.b_scale = xt.scale.as<float>() + b.scale_offset;
  q.b_scale_group = 1;
  q.b_scale_row = 1;
  q.b_scale_kb = xt.cols;
  q.c = f32_mut(dw);
  q.ldc = xt.cols;
  q.M = i32(dyt.cols, "N");
  q.N = i32(xt.cols, "K");
  q.K = i32(a.rows, "group rows");
  q.beta = 1.0f;
  return q;
}

// One or two weight lists over the same input x (a SwiGLU MLP's gate and up projections):
// y_j = x W_j,g^T per group, Fp8, one grouped launch with the groups' problems of both
// lists side by side (they share x's tiles in L2); x is quantized once.
void fp8_forward(const Tensor& x, std::span<const std::span<const Tensor>> w, std::span<const std::int64_t> offsets,
                 std::span<Tensor* const> y, cudaStream_t st) {
  const std::int64_t M = x.dim(0), K = x.dim(1);
  if (M == 0) return;
  if (K == 0) {
    for (Tensor* yj : y) CHECK_CUDA(cudaMemsetAsync(yj->raw(), 0, static_cast<std::size_t>(yj->nbytes()), st));
    return;
  }
  const Fp8GemmInput qx = quantize(f32(x), M, K, ScaleLayout::Tile1x128, st);  // once for all groups
  std::vector<Fp8WeightGroup> local(w.size());  // the weights' codes when no WeightCacheScope is open
  std::vector<const Fp8WeightGroup*> wq;
  for (std::size_t j = 0; j < w.size(); ++j)
    if (y[j]->dim(1) > 0)
      wq.push_back(&weight_fp8_group(w[j], false, round_up(y[j]->dim(1), 4), round_up(K, 16), local[j], st));
    else
      wq.push_back(nullptr);
  std::vector<Fp8GroupedProblem> problems;
  for (std::size_t g = 0; g + 1 < offsets.size(); ++g) {
    const std::int64_t r0 = offsets[g], n = offsets[g + 1] - r0;
    if (n == 0) continue;
    for (std::size_t j = 0; j < w.size(); ++j)
      if (wq[j] != nullptr) problems.push_back(rows_problem(qx, *wq[j], g, r0, n, *y[j], K, 0.0f));
  }
  sm90_fp8_grouped_gemm_nt(problems, st);
}

// dx [M, K] = sum_j dy_j,g W_j,g per group (written), and dw_j,g [N_j, K] += dy_j,g^T x_g,
// Fp8: x^T is quantized once for every list; Dgrad is one launch per list (the first
// writes dx, each later one adds to it, as an axpy of the separate results would), Wgrad
// one launch for all lists.
void fp8_backward(std::span<const Tensor* const> dy, const Tensor& x, std::span<const std::span<const Tensor>> w,
                  std::span<const std::int64_t> offsets, Tensor& dx, std::span<const std::span<Tensor>> dw,
                  cudaStream_t st) {
  const std::int64_t M = x.dim(0), K = x.dim(1);
  dgrad_lists(dy, dx, st, [&](std::size_t j, float beta) {
    const std::int64_t N = dy[j]->dim(1);
    const Fp8GemmInput qdy = quantize(f32(*dy[j]), M, N, ScaleLayout::Tile1x128, st);  // once for all groups
    Fp8WeightGroup local;  // the weights' codes when no WeightCacheScope is open
    const Fp8WeightGroup& wtq = weight_fp8_group(w[j], true, round_up(K, 4), round_up(N, 16), local, st);
    std::vector<Fp8GroupedProblem> problems;
    for (std::size_t g = 0; g + 1 < offsets.size(); ++g) {
      const std::int64_t r0 = offsets[g], n = offsets[g + 1] - r0;
      if (n > 0) problems.push_back(rows_problem(qdy, wtq, g, r0, n, dx, N, beta));
    }
    sm90_fp8_grouped_gemm_nt(problems, st);
  });
  if (K == 0) return;
  const TransposedGroups xt = quantize_groups_transposed(x, offsets, st);
  if (xt.groups.empty()) return;  // every dw_g += 0
  std::vector<TransposedGroups> dyt;
  for (const Tensor* d : dy) dyt.push_back(quantize_groups_transposed(*d, offsets, st));
  std::vector<Fp8GroupedProblem> problems;
  for (std::size_t g = 0; g + 1 < offsets.size(); ++g) {
    if (xt.at[g] < 0) continue;
    for (std::size_t j = 0; j < w.size(); ++j)
      if (dyt[j].cols > 0) problems.push_back(wgrad(dyt[j], xt, g, dw[j][g]));
  }
  sm90_fp8_grouped_gemm_nt(problems, st);
}

// ---- Bf16: the one-launch grouped GEMM (kernels/cuda/grouped_linear_bf16_cuda.h) ----

std::int64_t ld8(std::int64_t n) { return round_up(n, 8); }

// x [rows, cols] rounded to BF16 in one padded operand [rows, ld8(cols)].
DeviceScratch bf16_operand(const Tensor& x, cudaStream_t st) {
  const std::int64_t rows = x.dim(0), cols = x.dim(1);
  DeviceScratch out(static_cast<std::size_t>(rows * ld8(cols)) * 2, st);
  const Bf16Band band{f32(x), rows, out.as<std::uint16_t>(), ld8(cols)};
  bf16_bands(std::span(&band, 1), cols, false, st);
  return out;
}

// x_g^T [cols, ld8(n_g)] of every non-empty group of x [M, cols], in one launch, group after
// group; at[g] is group g's first element (-1 when empty).
struct Bf16Transposed {
  DeviceScratch q;
  std::vector<std::int64_t> at;
  std::int64_t cols = 0;
};

Bf16Transposed bf16_groups_transposed(const Tensor& x, std::span<const std::int64_t> offsets, cudaStream_t st) {
  Bf16Transposed t;
  t.cols = x.dim(1);
  std::int64_t total = 0;
  for (std::size_t g = 0; g + 1 < offsets.size(); ++g) {
    const std::int64_t n = offsets[g + 1] - offsets[g];
    t.at.push_back(n == 0 ? -1 : total);
    total += n == 0 ? 0 : t.cols * ld8(n);
  }
  if (total == 0) return t;
  t.q = DeviceScratch(static_cast<std::size_t>(total) * 2, st);
  std::vector<Bf16Band> bands;
  for (std::size_t g = 0; g + 1 < offsets.size(); ++g)
    if (t.at[g] >= 0)
      bands.push_back(Bf16Band{f32(x) + offsets[g] * t.cols, offsets[g + 1] - offsets[g],
                               t.q.as<std::uint16_t>() + t.at[g], ld8(offsets[g + 1] - offsets[g])});
  bf16_bands(bands, t.cols, true, st);
  return t;
}

// rows_problem in BF16: group g's rows [r0, r0 + n) of a [M, lda] (padded, rounded) and
// weight g of a group b [G, C, lda]: c_g [n, C] (+)= a_g b_g^T over K, C = c's columns.
// Fprop: a = x, b = W (c = y); Dgrad: a = dy, b = W^T (c = dx, K = N).
Bf16GroupedProblem bf16_rows_problem(const DeviceScratch& a, std::int64_t lda, const std::uint16_t* b, std::size_t g,
                                     std::int64_t r0, std::int64_t n, const Tensor& c, std::int64_t K, float beta) {
  Bf16GroupedProblem q;
  q.a = a.as<std::uint16_t>() + r0 * lda;
  q.lda = lda;
  q.b = b + static_cast<std::int64_t>(g) * c.dim(1) * lda;
  q.ldb = lda;
  set_rows_c(q, c, r0, n, K, beta);
  return q;
}

// As fp8_forward, in Bf16: x rounded once, each list's weights in one launch (cached), one
// grouped launch for every list.
void bf16_forward(const Tensor& x, std::span<const std::span<const Tensor>> w, std::span<const std::int64_t> offsets,
                  std::span<Tensor* const> y, cudaStream_t st) {
  const std::int64_t M = x.dim(0), K = x.dim(1), ldk = ld8(K);
  if (M == 0) return;
  const DeviceScratch xb = bf16_operand(x, st);
  std::vector<DeviceScratch> local(w.size());
  std::vector<const std::uint16_t*> wb;
  for (std::size_t j = 0; j < w.size(); ++j)
    wb.push_back(y[j]->dim(1) > 0 ? weight_bf16_group(w[j], false, ldk, local[j], st) : nullptr);
  std::vector<Bf16GroupedProblem> problems;
  for (std::size_t g = 0; g + 1 < offsets.size(); ++g) {
    const std::int64_t r0 = offsets[g], n = offsets[g + 1] - r0;
    if (n == 0) continue;
    for (std::size_t j = 0; j < w.size(); ++j) {
      if (wb[j] == nullptr) continue;
      problems.push_back(bf16_rows_problem(xb, ldk, wb[j], g, r0, n, *y[j], K, 0.0f));
    }
  }
  sm90_bf16_grouped_gemm_nt(problems, st);
}

// As fp8_backward, in Bf16: Dgrad one launch per list (the first writes dx, each later one
// adds to it), Wgrad one launch for every list, x^T rounded once.
void bf16_backward(std::span<const Tensor* const> dy, const Tensor& x, std::span<const std::span<const Tensor>> w,
                   std::span<const std::int64_t> offsets, Tensor& dx, std::span<const std::span<Tensor>> dw,
                   cudaStream_t st) {
  const std::int64_t K = x.dim(1);
  dgrad_lists(dy, dx, st, [&](std::size_t j, float beta) {
    const std::int64_t N = dy[j]->dim(1), ldn = ld8(N);
    const DeviceScratch dyb = bf16_operand(*dy[j], st);
    DeviceScratch local;
    const std::uint16_t* wt = weight_bf16_group(w[j], true, ldn, local, st);  // W_g^T [K, ldn]
    std::vector<Bf16GroupedProblem> problems;
    for (std::size_t g = 0; g + 1 < offsets.size(); ++g) {
      const std::int64_t r0 = offsets[g], n = offsets[g + 1] - r0;
      if (n == 0) continue;
      problems.push_back(bf16_rows_problem(dyb, ldn, wt, g, r0, n, dx, N, beta));
    }
    sm90_bf16_grouped_gemm_nt(problems, st);
  });
  if (K == 0) return;
  const Bf16Transposed xt = bf16_groups_transposed(x, offsets, st);
  std::vector<Bf16Transposed> dyt;
  for (const Tensor* d : dy) dyt.push_back(bf16_groups_transposed(*d, offsets, st));
  std::vector<Bf16GroupedProblem> problems;
  for (std::size_t g = 0; g + 1 < offsets.size(); ++g) {
    if (xt.at[g] < 0) continue;
    const std::int64_t n = offsets[g + 1] - offsets[g];
    for (std::size_t j = 0; j < w.size(); ++j) {
      if (dyt[j].cols == 0) continue;
      Bf16GroupedProblem q;  // dw_g [N, K] += dy_g^T [N, n] (x_g^T [K, n])^T
      q.a = dyt[j].q.as<std::uint16_t>() + dyt[j].at[g];
      q.lda = ld8(n);
      q.b = xt.q.as<std::uint16_t>() + xt.at[g];
      q.ldb = ld8(n);
      q.c = f32_mut(dw[j][g]);
      q.ldc = K;
      q.M = i32(dyt[j].cols, "N");
      q.N = i32(K, "K");
      q.K = i32(n, "group rows");
      q.beta = 1.0f;
      problems.push_back(q);
    }
  }
  sm90_bf16_grouped_gemm_nt(problems, st);
}

}  // namespace

namespace {

GemmOperand bf16_rows(const DeviceScratch& m, std::int64_t row0, std::int64_t cols) {
  return GemmOperand{m.as<std::uint16_t>() + row0 * cols, DType::BF16};
}

// Where group g's BF16 GEMMs run, and its weight's BF16 copy. Inside a WeightCacheScope
// the used groups' copies are looked up (or made) on `st` first and the GEMMs go to
// StreamFan's side streams: every copy outlives the join (the fan is the last member, so
// it joins first). Without a scope each group's copy is made into `local_` when asked,
// freeing the previous one, and the groups run one after another on `st`.
class GroupStreams {
 public:
  GroupStreams(std::span<const Tensor> w, std::span<const std::int64_t> offsets, bool with_weights, cudaStream_t st)
      : w_(w), st_(st), cached_(w.size()) {
    if (!ops::weight_cache_active()) return;
    if (with_weights)
      for (std::size_t g = 0; g < w.size(); ++g)
        if (offsets[g + 1] > offsets[g]) cached_[g] = weight_bf16(w[g], local_, st);
    fan_.emplace(st, StreamFan::kMaxSides);
  }
  cudaStream_t stream(std::size_t g) const { return fan_ ? fan_->side(g) : st_; }
  GemmOperand weight(std::size_t g) {
    return GemmOperand{fan_ ? cached_[g] : weight_bf16(w_[g], local_, st_), DType::BF16};
  }

 private:
  std::span<const Tensor> w_;
  cudaStream_t st_;
  DeviceScratch local_;                        // W_g's copy without a scope
  std::vector<const std::uint16_t*> cached_;   // with one
  std::optional<StreamFan> fan_;
};

// The operands that span all groups (x, dy) are rounded to BF16 once, not once per group
// (a DeepSeekMoE layer has hundreds of groups' GEMMs per step), and outlive the groups.
void bf16_forward_loop(const Tensor& x, std::span<const Tensor> w, std::span<const std::int64_t> offsets, Tensor& y,
                       cudaStream_t st) {
  const std::int64_t K = x.dim(1), N = y.dim(1);
  const DeviceScratch xb = bf16_copy(x, st);
  GroupStreams groups(w, offsets, true, st);
  for (std::size_t g = 0; g < w.size(); ++g) {
    const std::int64_t r0 = offsets[g], n = offsets[g + 1] - r0;
    if (n == 0) continue;
    gemm_rowmajor(false, true, n, N, K, bf16_rows(xb, r0, K), groups.weight(g), f32_mut(y) + r0 * N, 0.0f,
                  groups.stream(g));
  }
}

void bf16_backward_loop(const Tensor& dy, const Tensor& x, std::span<const Tensor> w,
                        std::span<const std::int64_t> offsets, Tensor& dx, std::span<Tensor> dw, cudaStream_t st) {
  const std::int64_t K = x.dim(1), N = dy.dim(1);
  const DeviceScratch dyb = bf16_copy(dy, st), xb = bf16_copy(x, st);
  GroupStreams groups(w, offsets, dx.defined(), st);
  for (std::size_t g = 0; g < w.size(); ++g) {
    const std::int64_t r0 = offsets[g], n = offsets[g + 1] - r0;
    if (n == 0) continue;  // dw_g += 0
    if (dx.defined())      // dx_g [n, K] = dy_g [n, N] W_g [N, K]
      gemm_rowmajor(false, false, n, K, N, bf16_rows(dyb, r0, N), groups.weight(g), f32_mut(dx) + r0 * K, 0.0f,
                    groups.stream(g));
    // dw_g [N, K] += dy_g^T x_g
    gemm_rowmajor(true, false, N, K, n, bf16_rows(dyb, r0, N), bf16_rows(xb, r0, K), f32_mut(dw[g]), 1.0f,
                  groups.stream(g));
  }
}

}  // namespace

void grouped_linear_forward_loop(const Tensor& x, std::span<const Tensor> w,
                                 std::span<const std::int64_t> offsets, Tensor& y, GemmPrecision p,
                                 const Stream& stream) {
  if (p == GemmPrecision::Bf16) {
    const DeviceGuard guard(x.device().index);
    return bf16_forward_loop(x, w, offsets, y, stream_on(stream, x.device(), "grouped_linear_forward"));
  }
  for (std::size_t g = 0; g < w.size(); ++g) {
    const std::int64_t r0 = offsets[g], r1 = offsets[g + 1];
    if (r0 == r1) continue;
    Tensor yg = y.slice(r0, r1);  // [n_g, N]
    cuda::linear_forward(x.slice(r0, r1), w[g], Tensor(), yg, p, stream);
  }
}

void grouped_linear_backward_loop(const Tensor& dy, const Tensor& x, std::span<const Tensor> w,
                                  std::span<const std::int64_t> offsets, Tensor& dx, std::span<Tensor> dw,
                                  GemmPrecision p, const Stream& stream) {
  if (p == GemmPrecision::Bf16) {
    const DeviceGuard guard(x.device().index);
    return bf16_backward_loop(dy, x, w, offsets, dx, dw, stream_on(stream, x.device(), "grouped_linear_backward"));
  }
  for (std::size_t g = 0; g < w.size(); ++g) {
    const std::int64_t r0 = offsets[g], r1 = offsets[g + 1];
    if (r0 == r1) continue;
    Tensor dxg = dx.defined() ? dx.slice(r0, r1) : Tensor();  // [n_g, K]
    Tensor no_bias;
    cuda::linear_backward(dy.slice(r0, r1), x.slice(r0, r1), w[g], dxg, dw[g], no_bias, p, stream);
  }
}

namespace {

// The one-launch ops for one or more weight lists over x: the Fp8 or Bf16 grouped kernels;
// Fp32 has no grouped kernel and runs one list through the loop (the ops:: layer sends the
// pair ops in Fp32 to two single ops).
void grouped_forward(const Tensor& x, std::span<const std::span<const Tensor>> w,
                     std::span<const std::int64_t> offsets, std::span<Tensor* const> y, GemmPrecision p,
                     const Stream& stream, const char* op) {
  const DeviceGuard guard(x.device().index);
  const cudaStream_t st = stream_on(stream, x.device(), op);
  if (p == GemmPrecision::Fp8) return fp8_forward(x, w, offsets, y, st);
  if (p == GemmPrecision::Bf16) return bf16_forward(x, w, offsets, y, st);
  CRUCIBLE_CHECK(w.size() == 1, op, ": Fp32 runs one weight list at a time");
  grouped_linear_forward_loop(x, w[0], offsets, *y[0], p, stream);
}

void grouped_backward(std::span<const Tensor* const> dy, const Tensor& x, std::span<const std::span<const Tensor>> w,
                      std::span<const std::int64_t> offsets, Tensor& dx, std::span<const std::span<Tensor>> dw,
                      GemmPrecision p, const Stream& stream, const char* op) {
  const DeviceGuard guard(x.device().index);
  const cudaStream_t st = stream_on(stream, x.device(), op);
  if (p == GemmPrecision::Fp8) return fp8_backward(dy, x, w, offsets, dx, dw, st);
  if (p == GemmPrecision::Bf16) return bf16_backward(dy, x, w, offsets, dx, dw, st);
  CRUCIBLE_CHECK(w.size() == 1, op, ": Fp32 runs one weight list at a time");
  grouped_linear_backward_loop(*dy[0], x, w[0], offsets, dx, dw[0], p, stream);
}

}  // namespace

void grouped_linear_forward(const Tensor& x, std::span<const Tensor> w, std::span<const std::int64_t> offsets,
                            Tensor& y, GemmPrecision p, const Stream& stream) {
  const std::span<const Tensor> lists[] = {w};
  Tensor* const outs[] = {&y};
  grouped_forward(x, lists, offsets, outs, p, stream, "grouped_linear_forward");
}

void grouped_linear_backward(const Tensor& dy, const Tensor& x, std::span<const Tensor> w,
                             std::span<const std::int64_t> offsets, Tensor& dx, std::span<Tensor> dw,
                             GemmPrecision p, const Stream& stream) {
  const Tensor* const dys[] = {&dy};
  const std::span<const Tensor> lists[] = {w};
  const std::span<Tensor> grads[] = {dw};
  grouped_backward(dys, x, lists, offsets, dx, grads, p, stream, "grouped_linear_backward");
}

void grouped_linear_pair_forward(const Tensor& x, std::span<const Tensor> w1, std::span<const Tensor> w2,
                                 std::span<const std::int64_t> offsets, Tensor& y1, Tensor& y2, GemmPrecision p,
                                 const Stream& stream) {
  const std::span<const Tensor> lists[] = {w1, w2};
  Tensor* const outs[] = {&y1, &y2};
  grouped_forward(x, lists, offsets, outs, p, stream, "grouped_linear_pair_forward");
}

void grouped_linear_pair_backward(const Tensor& dy1, const Tensor& dy2, const Tensor& x, std::span<const Tensor> w1,
                                  std::span<const Tensor> w2, std::span<const std::int64_t> offsets, Tensor& dx,
                                  std::span<Tensor> dw1, std::span<Tensor> dw2, GemmPrecision p,
                                  const Stream& stream) {
  const Tensor* const dys[] = {&dy1, &dy2};
  const std::span<const Tensor> lists[] = {w1, w2};
  const std::span<Tensor> grads[] = {dw1, dw2};
  grouped_backward(dys, x, lists, offsets, dx, grads, p, stream, "grouped_linear_pair_backward");
}

}  // namespace crucible::cuda
