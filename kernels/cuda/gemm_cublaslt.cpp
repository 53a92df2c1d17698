// kernels/cuda/gemm_cublaslt.cpp: the one place crucible calls cublasLtMatmul.
//
// Row-major to column-major mapping. cuBLASLt is column-major; a row-major X [r, c] is the
// column-major matrix X^T [c, r] with the same bytes and ld = c. So row-major
//   C [M, N] = op(A) op(B)     is column-major     C^T [N, M] = op(B)^T op(A)^T,
// and the call is cuBLAS-A := our B, cuBLAS-B := our A, (m, n, k) = (N, M, K):
//   cuBLAS-A  opA = trans_b ? T : N, layout trans_b ? [K x N, ld K] : [N x K, ld N]
//   cuBLAS-B  opB = trans_a ? T : N, layout trans_a ? [M x K, ld M] : [K x M, ld K]
//   C = D     [N x M, ld N], FP32
// Our NT GEMM (trans_a = false, trans_b = true) becomes opA = T, opB = N: the "TN" form,
// the only one Hopper's FP8 kernels take (cuBLAS docs, cublasLtMatmul: "A must be
// transposed and B non-transposed"). Both FP8 operands are then K-contiguous.
//
// FP8 scales (cuBLAS 13 docs §3.1.4.5, "128-element 1D and 128x128 2D block scaling"):
// cuBLAS-A's scales are our B's and cuBLAS-B's are our A's. In cuBLAS terms,
//   VEC128_32F      A: "M-major, M x L"; B: "N-major, N x L"; L = ceil(K / 128).
//                   For an operand stored [rows, K] that is [L, rows] row-major (element
//                   (r, kb) at kb * rows + r); rows = cuBLAS m or n, which must be % 4.
//   BLK128x128_32F  "K-major", L4 x ceil(rows / 128) with column stride L4 = L rounded up
//                   to a multiple of 4: [ceil(rows / 128), L4] row-major (element (rb, kb)
//                   at rb * L4 + kb).
// Supported pairs (A, B): (VEC128, VEC128), (VEC128, BLK), (BLK, VEC128); not (BLK, BLK).
// The DeepSeek-V3 GEMMs use (cuBLAS-A = weight BLK128x128, cuBLAS-B = activation VEC128)
// for Fprop and Dgrad and (VEC128, VEC128) for Wgrad. The scale types are CUDA_R_32F and
// the scale attributes are CUBLASLT_MATMUL_DESC_{A,B}_SCALE_POINTER / _SCALE_MODE.
//
// Plans: cublasLtMatmulAlgoGetHeuristic costs tens of microseconds of host time, as
// much as a small GEMM on the GPU (a DeepSeekMoE layer runs hundreds of them), and the
// descriptors a few more per call; so the descriptors and the heuristic's answer are
// kept per problem (device, shape, transposes, types, scale modes, pointer alignments:
// everything the query reads) and a call only sets the FP8 scale pointers. The query is
// deterministic, so the cache changes no result.
#include "kernels/cuda/gemm_cublaslt.h"

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <tuple>

#include "core/cuda_check.h"
#include "core/error.h"
#include "kernels/cuda/cublaslt_context.h"

namespace crucible::cuda {

namespace {

bool is_fp8(DType t) { return t == DType::E4M3 || t == DType::E5M2; }

cudaDataType_t cuda_type(DType t) {
  switch (t) {
    case DType::F32: return CUDA_R_32F;
    case DType::BF16: return CUDA_R_16BF;
    case DType::E4M3: return CUDA_R_8F_E4M3;
    case DType::E5M2: return CUDA_R_8F_E5M2;
    default: break;
  }
  CRUCIBLE_FAIL("gemm_rowmajor: operand dtype ", dtype_name(t), " is not f32, bf16, e4m3 or e5m2");
}

std::int32_t lt_scale_mode(Fp8ScaleMode m) {
  switch (m) {
    case Fp8ScaleMode::PerTensor: return CUBLASLT_MATMUL_MATRIX_SCALE_SCALAR_32F;
    case Fp8ScaleMode::Vec128: return CUBLASLT_MATMUL_MATRIX_SCALE_VEC128_32F;
    case Fp8ScaleMode::Block128x128: return CUBLASLT_MATMUL_MATRIX_SCALE_BLK128x128_32F;
  }
  CRUCIBLE_FAIL("gemm_rowmajor: unknown Fp8ScaleMode ", static_cast<int>(m));
}

const char* mode_name(Fp8ScaleMode m) {
  switch (m) {
    case Fp8ScaleMode::PerTensor: return "per-tensor";
    case Fp8ScaleMode::Vec128: return "1x128 (VEC128_32F)";
    case Fp8ScaleMode::Block128x128: return "128x128 (BLK128x128_32F)";
  }
  return "?";
}

// The largest power of two (<= 256) that divides the address: cuBLASLt's heuristics
// otherwise assume 256-byte aligned operands and may pick a kernel that faults on a view.
std::uint32_t alignment_of(const void* p) {
  const auto addr = reinterpret_cast<std::uintptr_t>(p);
  std::uint32_t a = 256;
  while (a > 1 && addr % a != 0) a /= 2;
  return a;
}

// RAII for the three descriptor kinds.
struct MatmulDesc {
  cublasLtMatmulDesc_t d = nullptr;
  ~MatmulDesc() {
    if (d) cublasLtMatmulDescDestroy(d);
  }
  template <typename T>
  void set(cublasLtMatmulDescAttributes_t attr, const T& value) {
    CHECK_CUBLAS(cublasLtMatmulDescSetAttribute(d, attr, &value, sizeof(value)));
  }
};
struct Layout {
  cublasLtMatrixLayout_t d = nullptr;
  Layout(cudaDataType_t type, std::int64_t rows, std::int64_t cols, std::int64_t ld) {
    CHECK_CUBLAS(cublasLtMatrixLayoutCreate(&d, type, static_cast<std::uint64_t>(rows),
                                            static_cast<std::uint64_t>(cols), ld));
  }
  ~Layout() {
    if (d) cublasLtMatrixLayoutDestroy(d);
  }
  Layout(const Layout&) = delete;
  Layout& operator=(const Layout&) = delete;
};
struct Preference {
  cublasLtMatmulPreference_t d = nullptr;
  ~Preference() {
    if (d) cublasLtMatmulPreferenceDestroy(d);
  }
  template <typename T>
  void set(cublasLtMatmulPreferenceAttributes_t attr, const T& value) {
    CHECK_CUBLAS(cublasLtMatmulPreferenceSetAttribute(d, attr, &value, sizeof(value)));
  }
};

std::string describe(bool trans_a, bool trans_b, std::int64_t M, std::int64_t N, std::int64_t K,
                     const GemmOperand& a, const GemmOperand& b) {
  std::string s = detail::concat("C [", M, ", ", N, "] = A", trans_a ? "^T" : "", " B", trans_b ? "^T" : "",
                                 " with K = ", K, ", ", dtype_name(a.dtype), " x ", dtype_name(b.dtype));
  if (is_fp8(a.dtype))
    s += detail::concat(", scales ", mode_name(a.scale_mode), " x ", mode_name(b.scale_mode));
  return s;
}

void check_fp8(bool trans_a, bool trans_b, std::int64_t M, std::int64_t N, std::int64_t K,
               const GemmOperand& a, const GemmOperand& b, const float* c) {
  const std::string what = describe(trans_a, trans_b, M, N, K, a, b);
  CRUCIBLE_CHECK(!trans_a && trans_b, "FP8 GEMM ", what,
                 ": only the NT form (A [M, K], B [N, K], both K-contiguous) exists on Hopper");
  CRUCIBLE_CHECK(K % 16 == 0 && M % 4 == 0 && N % 4 == 0, "FP8 GEMM ", what,
                 ": cuBLASLt needs K % 16 == 0 (16-byte rows of codes) and M, N % 4 == 0 (scale "
                 "vectors and FP32 output rows); pad the operands (kernels/cuda/linear_cuda.cpp does)");
  CRUCIBLE_CHECK(a.scale != nullptr && b.scale != nullptr, "FP8 GEMM ", what, ": missing scales");
  CRUCIBLE_CHECK(alignment_of(a.data) >= 16 && alignment_of(b.data) >= 16 && alignment_of(c) >= 16 &&
                     alignment_of(a.scale) >= 16 && alignment_of(b.scale) >= 16,
                 "FP8 GEMM ", what, ": codes, scales and C must be 16-byte aligned");
  const bool a_tensor = a.scale_mode == Fp8ScaleMode::PerTensor;
  const bool b_tensor = b.scale_mode == Fp8ScaleMode::PerTensor;
  CRUCIBLE_CHECK(a_tensor == b_tensor, "FP8 GEMM ", what,
                 ": per-tensor scaling pairs only with per-tensor scaling");
  CRUCIBLE_CHECK(!(a.scale_mode == Fp8ScaleMode::Block128x128 && b.scale_mode == Fp8ScaleMode::Block128x128),
                 "FP8 GEMM ", what, ": cuBLASLt has no 128x128 x 128x128 block-scaled GEMM");
  if (!a_tensor) {
    const CublasLtContext& ctx = CublasLtContext::current();
    CRUCIBLE_CHECK(ctx.cc_major() == 9, "FP8 GEMM ", what,
                   ": cuBLASLt's 1x128 / 128x128 block scaling runs on Hopper (compute capability "
                   "9.x) only; device ",
                   ctx.device(), " is ", ctx.cc_major(), ".", ctx.cc_minor(),
                   ". Use precision = \"bf16\" on this GPU");
  }
}

// Everything the heuristic query reads, as a key.
using AlgoKey = std::tuple<int, bool, bool, std::int64_t, std::int64_t, std::int64_t, int, int, int, int, std::uint32_t,
                           std::uint32_t, std::uint32_t>;

// What a problem needs but its pointers: the descriptors and the heuristic's first
// algorithm. Made once per key, never destroyed (process lifetime, as CublasLtContext).
struct Plan {
  MatmulDesc op;
  std::optional<Layout> a, b, c;  // cuBLAS-A (our B), cuBLAS-B (our A), C
  cublasLtMatmulAlgo_t algo{};
};

// The plan of the problem; what() names it in the error. The FP8 scale pointers are
// the caller's to set on plan.op before each cublasLtMatmul (one host thread per
// device, as the rest of the backend: a plan is used by one call at a time).
template <typename What>
Plan& plan_for(const AlgoKey& key, const CublasLtContext& ctx, bool trans_a, bool trans_b, std::int64_t M,
               std::int64_t N, std::int64_t K, const GemmOperand& a, const GemmOperand& b, std::uint32_t align_a,
               std::uint32_t align_b, std::uint32_t align_c, const What& what) {
  static std::mutex mutex;
  static std::map<AlgoKey, Plan*> plans;  // never freed (see Plan)
  {
    const std::lock_guard<std::mutex> lock(mutex);
    if (const auto it = plans.find(key); it != plans.end()) return *it->second;
  }
  auto plan = std::make_unique<Plan>();
  const cublasComputeType_t compute = a.dtype == DType::F32 ? CUBLAS_COMPUTE_32F_PEDANTIC : CUBLAS_COMPUTE_32F;
  CHECK_CUBLAS(cublasLtMatmulDescCreate(&plan->op.d, compute, CUDA_R_32F));
  const cublasOperation_t op_a = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;  // cuBLAS-A = our B
  const cublasOperation_t op_b = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;  // cuBLAS-B = our A
  plan->op.set(CUBLASLT_MATMUL_DESC_TRANSA, op_a);
  plan->op.set(CUBLASLT_MATMUL_DESC_TRANSB, op_b);
  if (is_fp8(a.dtype)) {  // the query wants scale pointers too (cuBLASLt: INVALID_VALUE without)
    plan->op.set(CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, b.scale);  // cuBLAS-A's scales are our B's
    plan->op.set(CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, a.scale);
    plan->op.set(CUBLASLT_MATMUL_DESC_A_SCALE_MODE, lt_scale_mode(b.scale_mode));
    plan->op.set(CUBLASLT_MATMUL_DESC_B_SCALE_MODE, lt_scale_mode(a.scale_mode));
  }
  plan->a.emplace(cuda_type(b.dtype), trans_b ? K : N, trans_b ? N : K, trans_b ? K : N);
  plan->b.emplace(cuda_type(a.dtype), trans_a ? M : K, trans_a ? K : M, trans_a ? M : K);
  plan->c.emplace(CUDA_R_32F, N, M, N);
  Preference pref;
  CHECK_CUBLAS(cublasLtMatmulPreferenceCreate(&pref.d));
  pref.set(CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
           static_cast<std::uint64_t>(CublasLtContext::kWorkspaceBytes));
  pref.set(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, align_a);
  pref.set(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, align_b);
  pref.set(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, align_c);
  pref.set(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, align_c);
  cublasLtMatmulHeuristicResult_t heuristic{};
  int found = 0;
  const cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(ctx.handle(), plan->op.d, plan->a->d, plan->b->d,
                                                           plan->c->d, plan->c->d, pref.d, 1, &heuristic, &found);
  CRUCIBLE_CHECK(st == CUBLAS_STATUS_SUCCESS && found > 0, "cuBLASLt has no algorithm for ", what(), " on device ",
                 ctx.device(), " (", cublasGetStatusName(st), ")");
  plan->algo = heuristic.algo;
  const std::lock_guard<std::mutex> lock(mutex);
  const auto [it, fresh] = plans.try_emplace(key, plan.get());
  if (fresh) plan.release();
  return *it->second;
}

}  // namespace

void gemm_rowmajor(bool trans_a, bool trans_b, std::int64_t M, std::int64_t N, std::int64_t K,
                   const GemmOperand& a, const GemmOperand& b, float* c, float beta, cudaStream_t stream) {
  CRUCIBLE_CHECK(beta == 0.0f || beta == 1.0f, "gemm_rowmajor: beta must be 0 or 1, got ", beta);
  const bool fp8 = is_fp8(a.dtype);
  CRUCIBLE_CHECK(a.dtype == b.dtype || (fp8 && is_fp8(b.dtype)),
                 "gemm_rowmajor: ", describe(trans_a, trans_b, M, N, K, a, b), ": operand types do not pair");
  if (M == 0 || N == 0) return;
  if (K == 0) {  // an empty sum: C = beta * C
    if (beta == 0.0f)
      CHECK_CUDA(cudaMemsetAsync(c, 0, static_cast<std::size_t>(M * N) * sizeof(float), stream));
    return;
  }
  if (fp8) check_fp8(trans_a, trans_b, M, N, K, a, b, c);

  CublasLtContext& ctx = CublasLtContext::current();
  const std::uint32_t align_a = alignment_of(b.data), align_b = alignment_of(a.data), align_c = alignment_of(c);
  const AlgoKey key{ctx.device(), trans_a, trans_b, M, N, K, static_cast<int>(a.dtype), static_cast<int>(b.dtype),
                    static_cast<int>(a.scale_mode), static_cast<int>(b.scale_mode), align_a, align_b, align_c};
  Plan& plan = plan_for(key, ctx, trans_a, trans_b, M, N, K, a, b, align_a, align_b, align_c,
                        [&] { return describe(trans_a, trans_b, M, N, K, a, b); });
  if (fp8) {
    plan.op.set(CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, b.scale);  // cuBLAS-A's scales are our B's
    plan.op.set(CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, a.scale);
  }
  const float alpha = 1.0f;
  CHECK_CUBLAS(cublasLtMatmul(ctx.handle(), plan.op.d, &alpha, b.data, plan.a->d, a.data, plan.b->d, &beta, c,
                              plan.c->d, c, plan.c->d, &plan.algo, ctx.workspace(stream),
                              CublasLtContext::kWorkspaceBytes, stream));
}

}  // namespace crucible::cuda
