// kernels/cpu/linear.cpp: CPU reference of y = x W^T (+ b), its backward and gemm_nt,
// in FP32, BF16 and the emulated DeepSeek-V3 FP8 recipe.
//
// Invariant: FP32 and BF16 are one OpenBLAS sgemm each (BF16 on RNE-rounded copies of
// both operands). FP8 quantizes (core/fp8_tensor.h), decodes the codes to FP32 (exact),
// and for each 128-wide K block, ascending, computes the block's FP32 partial with
// sgemm on the decoded codes (every code product is exact in FP32; only the sum
// rounds) and promotes it:  acc += (scale_a * scale_b) * partial  (DeepGEMM's order:
// scale product first). The result is acc (+ beta * C). Everything runs in a fixed
// order, so results are bit-reproducible for a given OpenBLAS build and thread count
// (OpenBLAS splits M/N, never K, across threads).
// Reference: reference/deepseek_v3_fp8.md §4 (1x128 / 128x128 scaling, promotion every
// N_C = 128), DeepSeek-V3 report §3.3.2; DeepGEMM sm90 fp8_gemm (promotion epilogue).
// The public ops at the end also dispatch CUDA tensors to the twin (kernels/cuda/linear_cuda.h).
#include <cblas.h>

#include <algorithm>
#include <array>
#include <string>
#include <vector>

#include "core/profile.h"
#include "core/error.h"
#include "core/fp8_tensor.h"
#include "core/numerics.h"
#include "kernels/linear.h"
#include "kernels/tensor_ops.h"
#ifdef CRUCIBLE_WITH_CUDA
#include "kernels/cuda/linear_cuda.h"
#include "kernels/cuda/weight_cache.h"
#endif

namespace crucible::ops {

namespace {

// NOTE: 128 output rows per FP8 panel keep the partial and the accumulator
// ([128, N] FP32 each) near the cache while sgemm still sees a reasonable M.
constexpr std::int64_t kFp8PanelRows = 128;

std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return (a + b - 1) / b; }

std::string describe(const Tensor& t, const char* role) {
  return std::string(role) + " '" + (t.name().empty() ? "<unnamed>" : t.name()) + "' " +
         t.shape().str();
}

// A defined CPU f32 matrix [rows, cols]; rows/cols < 0 are not checked.
void check_matrix(const Tensor& t, const char* op, const char* role, std::int64_t rows,
                  std::int64_t cols) {
  CRUCIBLE_CHECK(t.defined(), op, ": ", role, " is undefined");
  CRUCIBLE_CHECK(t.device().is_cpu(), op, ": ", describe(t, role), " must be on the cpu, got ",
                 t.device().str());
  CRUCIBLE_CHECK(t.dtype() == DType::F32, op, ": ", describe(t, role), " must be f32, got ",
                 dtype_name(t.dtype()));
  CRUCIBLE_CHECK(t.rank() == 2, op, ": ", describe(t, role), " must be a matrix");
  CRUCIBLE_CHECK((rows < 0 || t.dim(0) == rows) && (cols < 0 || t.dim(1) == cols), op, ": ",
                 describe(t, role), " has the wrong shape, want [", rows, ", ", cols, "]");
}

// Row-major C [M, N] (ldc) = op(A) op(B) + beta * C with op(A) [M, K], op(B) [K, N].
// beta = 0 never reads C. Edge sizes are handled here: OpenBLAS rejects ld < 1.
void sgemm(bool trans_a, bool trans_b, std::int64_t M, std::int64_t N, std::int64_t K,
           const float* a, std::int64_t lda, const float* b, std::int64_t ldb, float beta,
           float* c, std::int64_t ldc) {
  if (M == 0 || N == 0) return;
  if (K == 0) {
    for (std::int64_t m = 0; m < M; ++m)
      for (std::int64_t n = 0; n < N; ++n) c[m * ldc + n] = beta == 0.0f ? 0.0f : beta * c[m * ldc + n];
    return;
  }
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
              static_cast<blasint>(M), static_cast<blasint>(N), static_cast<blasint>(K), 1.0f, a,
              static_cast<blasint>(std::max<std::int64_t>(lda, 1)), b,
              static_cast<blasint>(std::max<std::int64_t>(ldb, 1)), beta, c,
              static_cast<blasint>(std::max<std::int64_t>(ldc, 1)));
}

// A BF16-rounded (RNE) FP32 copy: the scratch operand of the Bf16 mode.
std::vector<float> round_bf16(const Tensor& t) {
  const float* p = t.data<float>();
  std::vector<float> out(static_cast<std::size_t>(t.numel()));
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = bf16_to_f32(f32_to_bf16(p[i]));
  return out;
}

// The FP32 values of an FP8 tensor's codes (not scaled): exact.
std::vector<float> decode_codes(const Fp8Tensor& t) {
  std::array<float, 256> lut{};
  for (int c = 0; c < 256; ++c) lut[c] = fp8_to_f32(static_cast<std::uint8_t>(c), t.format());
  const std::uint8_t* q = t.q.data<std::uint8_t>();
  std::vector<float> out(static_cast<std::size_t>(t.q.numel()));
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = lut[q[i]];
  return out;
}

// Where the scale of B's element (n, k-block kb) lives:
// scale[(n / group) * stride_n + kb * stride_kb].
struct ScaleIndex {
  std::int64_t group;  // 1 (1x128 tiles along K) or 128 (128x128 blocks)
  std::int64_t stride_n, stride_kb;
};

// The emulated FP8 GEMM: C [M, N] = sum_kb (sa(m, kb) * sb(n, kb)) * P_kb(m, n) (+ beta C),
// P_kb = A_kb op(B_kb) in FP32 on decoded codes, kb = 0, 1, ... (blocks of 128 along K).
//   a_codes [M, K]; a_scale [M, ceil(K / 128)] (1x128 tiles along K).
//   b_codes [N, K] when b_trans (NT) or [K, N] (NN); b_scale indexed by bi.
void fp8_gemm(std::int64_t M, std::int64_t N, std::int64_t K, const float* a_codes,
              const float* a_scale, const float* b_codes, bool b_trans, const float* b_scale,
              ScaleIndex bi, float beta, float* c) {
  if (M == 0 || N == 0) return;
  if (K == 0) {
    sgemm(false, b_trans, M, N, 0, a_codes, K, b_codes, b_trans ? K : N, beta, c, N);
    return;
  }
  const std::int64_t nkb = ceil_div(K, kFp8BlockSize);
  // sb[kb][n]: B's scales unrolled per K block, so the promotion loop is contiguous.
  std::vector<float> sb(static_cast<std::size_t>(nkb * N));
  for (std::int64_t kb = 0; kb < nkb; ++kb)
    for (std::int64_t n = 0; n < N; ++n)
      sb[kb * N + n] = b_scale[(n / bi.group) * bi.stride_n + kb * bi.stride_kb];

  const std::int64_t panel = std::min(M, kFp8PanelRows);
  std::vector<float> part(static_cast<std::size_t>(panel * N));  // [panel, N]
  std::vector<float> acc(static_cast<std::size_t>(panel * N));   // [panel, N]
  for (std::int64_t m0 = 0; m0 < M; m0 += panel) {
    const std::int64_t mp = std::min(panel, M - m0);
    std::fill(acc.begin(), acc.end(), 0.0f);
    for (std::int64_t kb = 0; kb < nkb; ++kb) {
      const std::int64_t k0 = kb * kFp8BlockSize, kw = std::min(kFp8BlockSize, K - k0);
      const float* bk = b_trans ? b_codes + k0 : b_codes + k0 * N;
      sgemm(false, b_trans, mp, N, kw, a_codes + m0 * K + k0, K, bk, b_trans ? K : N, 0.0f,
            part.data(), N);
      const float* sbk = sb.data() + kb * N;
      for (std::int64_t m = 0; m < mp; ++m) {
        const float sa = a_scale[(m0 + m) * nkb + kb];
        float* accm = acc.data() + m * N;
        const float* pm = part.data() + m * N;
        for (std::int64_t n = 0; n < N; ++n) accm[n] += (sa * sbk[n]) * pm[n];
      }
    }
    // Epilogue: the FP32 accumulator is the result (beta = 0) or is added to C.
    for (std::int64_t m = 0; m < mp; ++m) {
      float* cm = c + (m0 + m) * N;
      const float* accm = acc.data() + m * N;
      if (beta == 0.0f)
        std::copy_n(accm, N, cm);
      else
        for (std::int64_t n = 0; n < N; ++n) cm[n] = accm[n] + beta * cm[n];
    }
  }
}

// C [M, N] = A [M, K] B [N, K]^T (+ beta C) in precision p; in Fp8, A is the
// activation-like operand (1x128 tiles along K) and B the weight (128x128 blocks).
void gemm_nt_impl(const Tensor& a, const Tensor& b, Tensor& c, float beta, GemmPrecision p) {
  const std::int64_t M = a.dim(0), N = b.dim(0), K = a.dim(1);
  float* cp = c.data<float>();
  switch (p) {
    case GemmPrecision::Fp32:
      sgemm(false, true, M, N, K, a.data<float>(), K, b.data<float>(), K, beta, cp, N);
      return;
    case GemmPrecision::Bf16: {
      const std::vector<float> ar = round_bf16(a), br = round_bf16(b);
      sgemm(false, true, M, N, K, ar.data(), K, br.data(), K, beta, cp, N);
      return;
    }
    case GemmPrecision::Fp8: {
      const Fp8Tensor aq = quantize_fp8(a, ScaleLayout::Tile1x128);     // q [M, K], scale [M, nkb]
      const Fp8Tensor bq = quantize_fp8(b, ScaleLayout::Block128x128);  // q [N, K], scale [N/128, nkb]
      const std::vector<float> ac = decode_codes(aq), bc = decode_codes(bq);
      const ScaleIndex bi{kFp8BlockSize, /*stride_n=*/bq.scale.dim(1), /*stride_kb=*/1};
      fp8_gemm(M, N, K, ac.data(), aq.scale.data<float>(), bc.data(), /*b_trans=*/true,
               bq.scale.data<float>(), bi, beta, cp);
      return;
    }
  }
  CRUCIBLE_FAIL("gemm: unknown GemmPrecision ", static_cast<int>(p));
}

// dx [T, in] = dy [T, out] W [out, in]  (Dgrad, K = out).
void dgrad(const Tensor& dy, const Tensor& w, Tensor& dx, GemmPrecision p) {
  const std::int64_t T = dy.dim(0), out = dy.dim(1), in = w.dim(1);
  float* dxp = dx.data<float>();
  switch (p) {
    case GemmPrecision::Fp32:
      sgemm(false, false, T, in, out, dy.data<float>(), out, w.data<float>(), in, 0.0f, dxp, in);
      return;
    case GemmPrecision::Bf16: {
      const std::vector<float> dyr = round_bf16(dy), wr = round_bf16(w);
      sgemm(false, false, T, in, out, dyr.data(), out, wr.data(), in, 0.0f, dxp, in);
      return;
    }
    case GemmPrecision::Fp8: {
      // W's 128x128 blocks are W^T's blocks read the other way (same amax, same codes):
      // the block of W^T at (n_block, kb) is W's scale[kb][n_block].
      const Fp8Tensor dyq = quantize_fp8(dy, ScaleLayout::Tile1x128);   // q [T, out], scale [T, nkb]
      const Fp8Tensor wq = quantize_fp8(w, ScaleLayout::Block128x128);  // q [out, in], scale [nkb, in/128]
      const std::vector<float> ac = decode_codes(dyq), bc = decode_codes(wq);
      const ScaleIndex bi{kFp8BlockSize, /*stride_n=*/1, /*stride_kb=*/wq.scale.dim(1)};
      fp8_gemm(T, in, out, ac.data(), dyq.scale.data<float>(), bc.data(), /*b_trans=*/false,
               wq.scale.data<float>(), bi, 0.0f, dxp);
      return;
    }
  }
  CRUCIBLE_FAIL("linear_backward: unknown GemmPrecision ", static_cast<int>(p));
}

// dw [out, in] += dy [T, out]^T x [T, in]  (Wgrad, K = T).
void wgrad(const Tensor& dy, const Tensor& x, Tensor& dw, GemmPrecision p) {
  const std::int64_t T = dy.dim(0), out = dy.dim(1), in = x.dim(1);
  float* dwp = dw.data<float>();
  switch (p) {
    case GemmPrecision::Fp32:
      sgemm(true, false, out, in, T, dy.data<float>(), out, x.data<float>(), in, 1.0f, dwp, in);
      return;
    case GemmPrecision::Bf16: {
      const std::vector<float> dyr = round_bf16(dy), xr = round_bf16(x);
      sgemm(true, false, out, in, T, dyr.data(), out, xr.data(), in, 1.0f, dwp, in);
      return;
    }
    case GemmPrecision::Fp8: {
      // Both operands tiled 1x128 along tokens: dy^T [out, T] and x^T [in, T].
      const Fp8Tensor dyq = quantize_fp8_transposed(dy, ScaleLayout::Tile1x128);  // [out, T]
      const Fp8Tensor xq = quantize_fp8_transposed(x, ScaleLayout::Tile1x128);    // [in, T]
      const std::vector<float> ac = decode_codes(dyq), bc = decode_codes(xq);
      const ScaleIndex bi{1, /*stride_n=*/xq.scale.dim(1), /*stride_kb=*/1};
      fp8_gemm(out, in, T, ac.data(), dyq.scale.data<float>(), bc.data(), /*b_trans=*/true,
               xq.scale.data<float>(), bi, 1.0f, dwp);
      return;
    }
  }
  CRUCIBLE_FAIL("linear_backward: unknown GemmPrecision ", static_cast<int>(p));
}

}  // namespace

// The public ops: CUDA tensors go to the cuBLASLt twin, everything else is checked here
// as CPU tensors.
void gemm_nt(const Tensor& a, const Tensor& b, Tensor& c, float beta, GemmPrecision p,
             const Stream& stream) {
#ifdef CRUCIBLE_WITH_CUDA
  if (a.defined() && a.device().is_cuda()) return cuda::gemm_nt(a, b, c, beta, p, stream);
#endif
  check_matrix(a, "gemm_nt", "a", -1, -1);
  const std::int64_t M = a.dim(0), K = a.dim(1);
  check_matrix(b, "gemm_nt", "b", -1, K);
  check_matrix(c, "gemm_nt", "c", M, b.dim(0));
  gemm_nt_impl(a, b, c, beta, p);
}

void linear_forward(const Tensor& x, const Tensor& w, const Tensor& bias, Tensor& y,
                    GemmPrecision p, const Stream& stream) {
#ifdef CRUCIBLE_WITH_CUDA
  CRUCIBLE_PROFILE_SCOPE("linear.fwd");
  if (x.defined() && x.device().is_cuda()) return cuda::linear_forward(x, w, bias, y, p, stream);
#endif
  check_matrix(x, "linear_forward", "x", -1, -1);
  const std::int64_t T = x.dim(0), in = x.dim(1);
  check_matrix(w, "linear_forward", "w", -1, in);
  const std::int64_t out = w.dim(0);
  check_matrix(y, "linear_forward", "y", T, out);
  if (bias.defined()) {
    CRUCIBLE_CHECK(bias.device().is_cpu() && bias.dtype() == DType::F32 && bias.rank() == 1 &&
                       bias.dim(0) == out,
                   "linear_forward: ", describe(bias, "bias"), " must be a cpu f32 [", out, "]");
  }
  gemm_nt_impl(x, w, y, 0.0f, p);  // [T, out]
  if (bias.defined()) {
    // The bias is added in FP32 after the GEMM, as a GPU epilogue does.
    const float* b = bias.data<float>();
    float* yp = y.data<float>();
    for (std::int64_t t = 0; t < T; ++t)
      for (std::int64_t o = 0; o < out; ++o) yp[t * out + o] += b[o];
  }
}

void linear_backward(const Tensor& dy, const Tensor& x, const Tensor& w, Tensor& dx, Tensor& dw,
                     Tensor& dbias, GemmPrecision p, const Stream& stream) {
  CRUCIBLE_PROFILE_SCOPE("linear.bwd");
#ifdef CRUCIBLE_WITH_CUDA
  if (x.defined() && x.device().is_cuda())
    return cuda::linear_backward(dy, x, w, dx, dw, dbias, p, stream);
#endif
  check_matrix(x, "linear_backward", "x", -1, -1);
  const std::int64_t T = x.dim(0), in = x.dim(1);
  check_matrix(w, "linear_backward", "w", -1, in);
  const std::int64_t out = w.dim(0);
  check_matrix(dy, "linear_backward", "dy", T, out);
  check_matrix(dw, "linear_backward", "dw", out, in);
  if (dx.defined()) check_matrix(dx, "linear_backward", "dx", T, in);
  if (dbias.defined()) {
    CRUCIBLE_CHECK(dbias.device().is_cpu() && dbias.dtype() == DType::F32 && dbias.rank() == 1 &&
                       dbias.dim(0) == out,
                   "linear_backward: ", describe(dbias, "dbias"), " must be a cpu f32 [", out, "]");
  }

  if (dx.defined()) dgrad(dy, w, dx, p);  // [T, in] =
  wgrad(dy, x, dw, p);                    // [out, in] +=
  if (dbias.defined()) {
    // Column sums of dy in FP32, tokens ascending, then one add into dbias (+=),
    // like the Wgrad epilogue. Not quantized in any mode (it is not a GEMM).
    const float* g = dy.data<float>();
    std::vector<float> sum(static_cast<std::size_t>(out), 0.0f);
    for (std::int64_t t = 0; t < T; ++t)
      for (std::int64_t o = 0; o < out; ++o) sum[o] += g[t * out + o];
    float* db = dbias.data<float>();
    for (std::int64_t o = 0; o < out; ++o) db[o] += sum[o];
  }
}

void linear_pair_forward(const Tensor& x, const Tensor& w1, const Tensor& w2, Tensor& y1, Tensor& y2,
                         GemmPrecision p, const Stream& stream) {
#ifdef CRUCIBLE_WITH_CUDA
  CRUCIBLE_PROFILE_SCOPE("linear.fwd");
  if (x.defined() && x.device().is_cuda()) return cuda::linear_pair_forward(x, w1, w2, y1, y2, p, stream);
#endif
  const Tensor none;
  linear_forward(x, w1, none, y1, p, stream);
  linear_forward(x, w2, none, y2, p, stream);
}

void linear_pair_backward(const Tensor& dy1, const Tensor& dy2, const Tensor& x, const Tensor& w1, const Tensor& w2,
                          Tensor& dx, Tensor& dw1, Tensor& dw2, GemmPrecision p, const Stream& stream) {
#ifdef CRUCIBLE_WITH_CUDA
  if (x.defined() && x.device().is_cuda())
    return cuda::linear_pair_backward(dy1, dy2, x, w1, w2, dx, dw1, dw2, p, stream);
#endif
  Tensor none;
  linear_backward(dy1, x, w1, dx, dw1, none, p, stream);
  Tensor dx2;
  if (dx.defined()) dx2 = Tensor::empty(dx.shape(), DType::F32, dx.device(), "linear_pair.dx2");
  linear_backward(dy2, x, w2, dx2, dw2, none, p, stream);
  if (dx.defined()) axpy(1.0f, dx2, dx, stream);
}

namespace {
thread_local int weight_cache_depth = 0;  // open WeightCacheScopes on this thread
}  // namespace

WeightCacheScope::WeightCacheScope() { ++weight_cache_depth; }

WeightCacheScope::~WeightCacheScope() {
  if (--weight_cache_depth > 0) return;
#ifdef CRUCIBLE_WITH_CUDA
  cuda::release_weight_cache();
#endif
}

bool weight_cache_active() { return weight_cache_depth > 0; }

}  // namespace crucible::ops
