// kernels/cuda/linear_cuda.cpp: gemm_nt, linear_forward and linear_backward on CUDA tensors
// (contract and numerics in the header; cuBLASLt mapping in gemm_cublaslt.cpp).
//
// Invariant: every temporary (BF16 copies, transposes, FP8 codes and scales, padded C) is
// a DeviceScratch on the op's stream, so an op is fully stream-ordered and never
// synchronizes the host.
#include "kernels/cuda/linear_cuda.h"

#include <string>

#include "core/cuda_check.h"
#include "core/error.h"
#include "kernels/cuda/fp8_quantize_cuda.h"
#include "kernels/cuda/gemm_prep_cuda.h"
#include "kernels/cuda/weight_cache.h"

namespace crucible::cuda {

namespace {

using ops::GemmPrecision;

std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return (a + b - 1) / b; }
std::int64_t round_up(std::int64_t a, std::int64_t b) { return ceil_div(a, b) * b; }

std::string describe(const Tensor& t, const char* role) {
  return std::string(role) + " '" + (t.name().empty() ? "<unnamed>" : t.name()) + "' " + t.shape().str();
}

// A defined f32 matrix [rows, cols] on `device`; rows/cols < 0 are not checked.
void check_matrix(const Tensor& t, const char* op, const char* role, Device device, std::int64_t rows,
                  std::int64_t cols) {
  CRUCIBLE_CHECK(t.defined(), op, ": ", role, " is undefined");
  CRUCIBLE_CHECK(t.device() == device, op, ": ", describe(t, role), " is on ", t.device().str(),
                 " but the op runs on ", device.str(), " (move all operands to one device)");
  CRUCIBLE_CHECK(t.dtype() == DType::F32, op, ": ", describe(t, role), " must be f32, got ",
                 dtype_name(t.dtype()));
  CRUCIBLE_CHECK(t.rank() == 2, op, ": ", describe(t, role), " must be a matrix");
  CRUCIBLE_CHECK((rows < 0 || t.dim(0) == rows) && (cols < 0 || t.dim(1) == cols), op, ": ",
                 describe(t, role), " has the wrong shape, want [", rows, ", ", cols, "]");
}

void check_vector(const Tensor& t, const char* op, const char* role, Device device, std::int64_t n) {
  CRUCIBLE_CHECK(t.device() == device && t.dtype() == DType::F32 && t.rank() == 1 && t.dim(0) == n, op, ": ",
                 describe(t, role), " must be an f32 [", n, "] on ", device.str(), ", got ",
                 dtype_name(t.dtype()), " on ", t.device().str());
}

cudaStream_t stream_on(const Stream& stream, Device device, const char* op) {
  CRUCIBLE_CHECK(stream.device().is_cpu() || stream.device() == device, op, ": the stream is on ",
                 stream.device().str(), " but the tensors are on ", device.str());
  return static_cast<cudaStream_t>(stream.handle());  // CPU stream: the legacy default stream
}

const float* f32(const Tensor& t) { return static_cast<const float*>(t.raw()); }
float* f32_mut(const Tensor& t) { return static_cast<float*>(t.raw()); }

GemmOperand plain(const void* data, DType dtype) {
  return GemmOperand{data, dtype, nullptr, Fp8ScaleMode::PerTensor};
}

// Row-major C [M, N] = op(A) op(B) (+ beta C) in Fp32 or Bf16; a and b are f32 device
// tensors stored as gemm_rowmajor describes (Bf16 multiplies RNE-rounded copies; b's comes
// from the weight cache when b is a weight).
void gemm_plain(bool trans_a, bool trans_b, std::int64_t M, std::int64_t N, std::int64_t K, const Tensor& a,
                const Tensor& b, bool b_is_weight, float* c, float beta, GemmPrecision p, cudaStream_t st) {
  if (p == GemmPrecision::Fp32) {
    gemm_rowmajor(trans_a, trans_b, M, N, K, plain(a.raw(), DType::F32), plain(b.raw(), DType::F32), c, beta,
                  st);
    return;
  }
  const DeviceScratch ab = bf16_copy(a, st);
  DeviceScratch local;
  const void* bb = b_is_weight ? static_cast<const void*>(weight_bf16(b, local, st)) : (local = bf16_copy(b, st)).get();
  gemm_rowmajor(trans_a, trans_b, M, N, K, plain(ab.get(), DType::BF16), plain(bb, DType::BF16), c, beta, st);
}

// FP8 GEMM padding (see the header): rows and N to multiples of 4, K to whole 128-blocks.
std::int64_t padded_rows(std::int64_t rows) { return round_up(rows, 4); }
std::int64_t padded_k(std::int64_t k) { return round_up(k, kFp8BlockSize); }

// The buffers of an operand in 1x128 tiles with `rows` real rows: codes [rows_p, k_p] and
// Vec128 scales [k_p / 128, rows_p]. The padded rows' codes, and the scales, are zeroed
// when rows < rows_p; the quantizer writes the real rows' codes and scales.
Fp8GemmInput vec128_operand(std::int64_t rows, std::int64_t rows_p, std::int64_t k_p, DType format,
                            cudaStream_t st) {
  Fp8GemmInput in;
  in.rows_p = rows_p;
  in.k_p = k_p;
  const std::int64_t Lp = ceil_div(k_p, kFp8BlockSize);
  in.q = DeviceScratch(static_cast<std::size_t>(rows_p * k_p), st);
  in.scale = DeviceScratch(static_cast<std::size_t>(Lp * rows_p) * sizeof(float), st);
  if (rows_p != rows) {
    CHECK_CUDA(cudaMemsetAsync(in.q.as<std::uint8_t>() + rows * k_p, 0, static_cast<std::size_t>((rows_p - rows) * k_p),
                               st));
    CHECK_CUDA(cudaMemsetAsync(in.scale.get(), 0, static_cast<std::size_t>(Lp * rows_p) * sizeof(float), st));
  }
  in.operand = GemmOperand{in.q.get(), format, in.scale.as<float>(), Fp8ScaleMode::Vec128};
  return in;
}

// An activation a [M, K] in 1x128 tiles, padded to [padded_rows(M), padded_k(K)].
Fp8GemmInput activation_fp8(const float* a, std::int64_t M, std::int64_t K, cudaStream_t st) {
  return quantize_gemm_operand(a, M, K, ScaleLayout::Tile1x128, padded_rows(M), padded_k(K), st);
}

// x^T for x [T, K] (f32, device) as an FP8 GEMM operand [padded_rows(K), padded_k(T)] in 1x128
// tiles along T (Vec128 scales [Lp, rows_p]): the transposed quantizer reads x once; the
// padded rows' codes and scales are zeroed.
Fp8GemmInput quantize_transposed(const float* x, std::int64_t T, std::int64_t K, cudaStream_t st) {
  Fp8GemmInput in = vec128_operand(K, padded_rows(K), padded_k(T), DType::E4M3, st);
  const Fp8TransposedGroup all{0, T, 0, in.k_p, 0, 1, in.rows_p};
  quantize_fp8_transposed(x, K, std::span(&all, 1), in.q.as<std::uint8_t>(), in.scale.as<float>(), {}, st);
  return in;
}

// C [M, N] (+)= A B^T with an empty side: nothing to multiply (C = 0 when K = 0 and beta = 0).
// Returns whether it was one.
bool fp8_trivial(std::int64_t M, std::int64_t N, std::int64_t K, float* c, float beta, cudaStream_t st) {
  if (M == 0 || N == 0) return true;
  if (K != 0) return false;
  if (beta == 0.0f) CHECK_CUDA(cudaMemsetAsync(c, 0, static_cast<std::size_t>(M * N) * sizeof(float), st));
  return true;
}

// C [M, N] = A [M, K] B [N, K]^T (+ beta C) in the FP8 recipe: qa and qb are A and B
// quantized and padded (see the header) to [padded_rows(M or N), padded_k(K)].
// NOTE: K is padded to whole 128-blocks (not just to cuBLASLt's 16) so that cuBLASLt never
// sees a partial scale block; the CPU twin sums partial blocks, zeros add nothing.
void fp8_gemm_nt(const Fp8GemmInput& qa, const Fp8GemmInput& qb, float* c, std::int64_t M, std::int64_t N,
                 std::int64_t K, float beta, cudaStream_t st) {
  const std::int64_t Mp = padded_rows(M), Np = padded_rows(N), Kp = padded_k(K);
  if (Mp == M && Np == N) {
    gemm_rowmajor(false, true, M, N, Kp, qa.operand, qb.operand, c, beta, st);
    return;
  }
  // C through a padded [Mp, Np] copy (its padding rows/columns are never read back).
  const std::size_t row = static_cast<std::size_t>(N) * sizeof(float);
  const std::size_t row_p = static_cast<std::size_t>(Np) * sizeof(float);
  DeviceScratch cp(static_cast<std::size_t>(Mp) * row_p, st);
  if (beta != 0.0f)
    CHECK_CUDA(cudaMemcpy2DAsync(cp.get(), row_p, c, row, row, static_cast<std::size_t>(M),
                                 cudaMemcpyDeviceToDevice, st));
  gemm_rowmajor(false, true, Mp, Np, Kp, qa.operand, qb.operand, cp.as<float>(), beta, st);
  CHECK_CUDA(cudaMemcpy2DAsync(c, row, cp.get(), row_p, row, static_cast<std::size_t>(M),
                               cudaMemcpyDeviceToDevice, st));
}

}  // namespace

DeviceScratch bf16_copy(const Tensor& t, cudaStream_t stream) {
  return bf16_copy(static_cast<const float*>(t.raw()), t.numel(), stream);
}

Fp8GemmInput quantize_gemm_operand(const float* x, std::int64_t rows, std::int64_t k, ScaleLayout layout,
                                   std::int64_t rows_p, std::int64_t k_p, cudaStream_t stream,
                                   Fp8Options opts) {
  CRUCIBLE_CHECK(rows_p >= rows && rows_p % 4 == 0 && k_p >= k && k_p % 16 == 0, "quantize_gemm_operand: [",
                 rows, ", ", k, "] cannot be padded to [", rows_p, ", ", k_p,
                 "] (want rows_p >= rows, a multiple of 4, and k_p >= k, a multiple of 16)");
  const std::int64_t L = ceil_div(k, kFp8BlockSize), Lp = ceil_div(k_p, kFp8BlockSize);
  if (layout == ScaleLayout::Tile1x128 && k_p <= L * kFp8BlockSize) {
    // 1x128 tiles straight into the GEMM's layout (the quantizer zeroes columns k .. k_p).
    Fp8GemmInput in = vec128_operand(rows, rows_p, k_p, opts.format, stream);
    quantize_fp8_tiles(x, rows, k, in.q.as<std::uint8_t>(), k_p, in.scale.as<float>(), 1, rows_p, opts, stream);
    return in;
  }
  Fp8GemmInput in;
  in.rows_p = rows_p;
  in.k_p = k_p;
  in.q = DeviceScratch(static_cast<std::size_t>(rows_p * k_p), stream);  // [rows_p, k_p]
  const bool pad_codes = rows_p != rows || k_p != k;
  DeviceScratch raw_q;  // [rows, k] when padding
  if (pad_codes) raw_q = DeviceScratch(static_cast<std::size_t>(rows * k), stream);
  std::uint8_t* q = pad_codes ? raw_q.as<std::uint8_t>() : in.q.as<std::uint8_t>();

  // Scales as the quantizer writes them (core/fp8_tensor.h) and as cuBLASLt reads them:
  //   Tile1x128     [rows, L]             -> Vec128        [Lp, rows_p]           (transposed)
  //   Block128x128  [ceil(rows / 128), L] -> Block128x128  [ceil(rows_p / 128), L4]
  // zero-padded (padded codes are zero, so a padded scale never matters).
  const bool tile = layout == ScaleLayout::Tile1x128;
  const std::int64_t R = tile ? rows : ceil_div(rows, kFp8BlockSize);
  const std::int64_t Rp = tile ? rows_p : ceil_div(rows_p, kFp8BlockSize);
  const std::int64_t L4 = round_up(Lp, 4);
  const bool direct_scale = !tile && Rp == R && L4 == L;  // the quantizer's layout already fits
  in.scale = DeviceScratch(static_cast<std::size_t>(tile ? Lp * rows_p : Rp * L4) * sizeof(float), stream);
  DeviceScratch raw_scale;
  if (!direct_scale) raw_scale = DeviceScratch(static_cast<std::size_t>(R * L) * sizeof(float), stream);
  float* scale = direct_scale ? in.scale.as<float>() : raw_scale.as<float>();

  quantize_fp8(x, q, scale, rows, k, layout, opts, stream);
  if (pad_codes) {
    CHECK_CUDA(cudaMemsetAsync(in.q.get(), 0, static_cast<std::size_t>(rows_p * k_p), stream));
    if (rows > 0 && k > 0)
      CHECK_CUDA(cudaMemcpy2DAsync(in.q.get(), static_cast<std::size_t>(k_p), q, static_cast<std::size_t>(k),
                                   static_cast<std::size_t>(k), static_cast<std::size_t>(rows),
                                   cudaMemcpyDeviceToDevice, stream));
  }
  if (tile)
    copy_scales_2d(scale, rows, L, /*transpose=*/true, in.scale.as<float>(), Lp, rows_p, stream);
  else if (!direct_scale)
    copy_scales_2d(scale, R, L, /*transpose=*/false, in.scale.as<float>(), Rp, L4, stream);
  in.operand = GemmOperand{in.q.get(), opts.format, in.scale.as<float>(),
                           tile ? Fp8ScaleMode::Vec128 : Fp8ScaleMode::Block128x128};
  return in;
}

namespace {

// C [M, N] (+)= a [M, K] b [N, K]^T on checked operands; b's GEMM form comes from the
// weight cache when b is a weight.
void gemm_nt_checked(const Tensor& a, const Tensor& b, bool b_is_weight, Tensor& c, float beta, GemmPrecision p,
                     cudaStream_t st) {
  const std::int64_t M = a.dim(0), K = a.dim(1), N = b.dim(0);
  switch (p) {
    case GemmPrecision::Fp32:
    case GemmPrecision::Bf16: gemm_plain(false, true, M, N, K, a, b, b_is_weight, f32_mut(c), beta, p, st); return;
    case GemmPrecision::Fp8: {
      if (fp8_trivial(M, N, K, f32_mut(c), beta, st)) return;
      Fp8GemmInput local;
      const Fp8GemmInput& qb =
          b_is_weight ? weight_fp8(b, false, padded_rows(N), padded_k(K), local, st)
                      : (local = quantize_gemm_operand(f32(b), N, K, ScaleLayout::Block128x128, padded_rows(N),
                                                       padded_k(K), st));
      fp8_gemm_nt(activation_fp8(f32(a), M, K, st), qb, f32_mut(c), M, N, K, beta, st);
      return;
    }
  }
  CRUCIBLE_FAIL("gemm_nt: unknown GemmPrecision ", static_cast<int>(p));
}

// Bf16 Dgrad dx [T, in] (+)= dy W and Wgrad dw [out, in] += dy^T x on rounded operands
// (dyb, xb: BF16 copies of dy [T, out] and x [T, in]; W's from the weight cache).
void bf16_dgrad(const DeviceScratch& dyb, const Tensor& w, std::int64_t T, std::int64_t in, std::int64_t out,
                float* dx, float beta, cudaStream_t st) {
  DeviceScratch local;
  gemm_rowmajor(false, false, T, in, out, plain(dyb.get(), DType::BF16), plain(weight_bf16(w, local, st), DType::BF16),
                dx, beta, st);
}
void bf16_wgrad(const DeviceScratch& dyb, const DeviceScratch& xb, std::int64_t T, std::int64_t in, std::int64_t out,
                float* dw, cudaStream_t st) {
  gemm_rowmajor(true, false, out, in, T, plain(dyb.get(), DType::BF16), plain(xb.get(), DType::BF16), dw, 1.0f, st);
}

}  // namespace

void gemm_nt(const Tensor& a, const Tensor& b, Tensor& c, float beta, GemmPrecision p, const Stream& stream) {
  CRUCIBLE_CHECK(a.defined(), "gemm_nt: a is undefined");
  const Device dev = a.device();
  check_matrix(a, "gemm_nt", "a", dev, -1, -1);
  const std::int64_t M = a.dim(0), K = a.dim(1);
  check_matrix(b, "gemm_nt", "b", dev, -1, K);
  const std::int64_t N = b.dim(0);
  check_matrix(c, "gemm_nt", "c", dev, M, N);
  CRUCIBLE_CHECK(beta == 0.0f || beta == 1.0f, "gemm_nt on ", dev.str(), ": beta must be 0 or 1, got ", beta);
  const DeviceGuard guard(dev.index);
  gemm_nt_checked(a, b, false, c, beta, p, stream_on(stream, dev, "gemm_nt"));
}

void linear_forward(const Tensor& x, const Tensor& w, const Tensor& bias, Tensor& y, GemmPrecision p,
                    const Stream& stream) {
  CRUCIBLE_CHECK(x.defined(), "linear_forward: x is undefined");
  const Device dev = x.device();
  check_matrix(x, "linear_forward", "x", dev, -1, -1);
  const std::int64_t T = x.dim(0), in = x.dim(1);
  check_matrix(w, "linear_forward", "w", dev, -1, in);
  const std::int64_t out = w.dim(0);
  check_matrix(y, "linear_forward", "y", dev, T, out);
  if (bias.defined()) check_vector(bias, "linear_forward", "bias", dev, out);
  const DeviceGuard guard(dev.index);
  const cudaStream_t st = stream_on(stream, dev, "linear_forward");
  gemm_nt_checked(x, w, true, y, 0.0f, p, st);  // [T, out]
  // The bias is added in FP32 after the GEMM, as the CPU twin does.
  if (bias.defined()) add_bias_rows(f32_mut(y), f32(bias), T, out, st);
}

void linear_backward(const Tensor& dy, const Tensor& x, const Tensor& w, Tensor& dx, Tensor& dw,
                     Tensor& dbias, GemmPrecision p, const Stream& stream) {
  CRUCIBLE_CHECK(x.defined(), "linear_backward: x is undefined");
  const Device dev = x.device();
  check_matrix(x, "linear_backward", "x", dev, -1, -1);
  const std::int64_t T = x.dim(0), in = x.dim(1);
  check_matrix(w, "linear_backward", "w", dev, -1, in);
  const std::int64_t out = w.dim(0);
  check_matrix(dy, "linear_backward", "dy", dev, T, out);
  check_matrix(dw, "linear_backward", "dw", dev, out, in);
  if (dx.defined()) check_matrix(dx, "linear_backward", "dx", dev, T, in);
  if (dbias.defined()) check_vector(dbias, "linear_backward", "dbias", dev, out);
  const DeviceGuard guard(dev.index);
  const cudaStream_t st = stream_on(stream, dev, "linear_backward");

  switch (p) {
    case GemmPrecision::Fp32:
      // Dgrad dx [T, in] = dy [T, out] W [out, in]; Wgrad dw [out, in] += dy^T x.
      if (dx.defined()) gemm_plain(false, false, T, in, out, dy, w, true, f32_mut(dx), 0.0f, p, st);
      gemm_plain(true, false, out, in, T, dy, x, false, f32_mut(dw), 1.0f, p, st);
      break;
    case GemmPrecision::Bf16: {  // as Fp32, dy rounded once for both GEMMs
      const DeviceScratch dyb = bf16_copy(dy, st);
      if (dx.defined()) bf16_dgrad(dyb, w, T, in, out, f32_mut(dx), 0.0f, st);
      bf16_wgrad(dyb, bf16_copy(x, st), T, in, out, f32_mut(dw), st);
      break;
    }
    case GemmPrecision::Fp8: {
      if (dx.defined() && !fp8_trivial(T, in, out, f32_mut(dx), 0.0f, st)) {
        // Dgrad as NT: dx = dy [T, out] (W^T [in, out])^T, K = out (W^T's blocks: weight_fp8).
        Fp8GemmInput local;
        const Fp8GemmInput& qwt = weight_fp8(w, true, padded_rows(in), padded_k(out), local, st);
        fp8_gemm_nt(activation_fp8(f32(dy), T, out, st), qwt, f32_mut(dx), T, in, out, 0.0f, st);
      }
      // Wgrad as NT: dw += dy^T [out, T] (x^T [in, T])^T, K = T, both tiled along tokens.
      if (fp8_trivial(out, in, T, f32_mut(dw), 1.0f, st)) break;
      fp8_gemm_nt(quantize_transposed(f32(dy), T, out, st), quantize_transposed(f32(x), T, in, st), f32_mut(dw),
                  out, in, T, 1.0f, st);
      break;
    }
    default: CRUCIBLE_FAIL("linear_backward: unknown GemmPrecision ", static_cast<int>(p));
  }
  // Column sums of dy in FP32, tokens ascending, then one add into dbias (+=): the CPU
  // twin's order (not quantized in any mode).
  if (dbias.defined()) column_sum_accumulate(f32(dy), f32_mut(dbias), T, out, st);
}

namespace {

// The checks of a pair: x [T, in], w1 [o1, in], w2 [o2, in]; returns x's device.
Device check_pair(const Tensor& x, const Tensor& w1, const Tensor& w2, const char* op) {
  CRUCIBLE_CHECK(x.defined(), op, ": x is undefined");
  const Device dev = x.device();
  check_matrix(x, op, "x", dev, -1, -1);
  check_matrix(w1, op, "w1", dev, -1, x.dim(1));
  check_matrix(w2, op, "w2", dev, -1, x.dim(1));
  return dev;
}

}  // namespace

void linear_pair_forward(const Tensor& x, const Tensor& w1, const Tensor& w2, Tensor& y1, Tensor& y2, GemmPrecision p,
                         const Stream& stream) {
  const Device dev = check_pair(x, w1, w2, "linear_pair_forward");
  const std::int64_t T = x.dim(0), in = x.dim(1);
  check_matrix(y1, "linear_pair_forward", "y1", dev, T, w1.dim(0));
  check_matrix(y2, "linear_pair_forward", "y2", dev, T, w2.dim(0));
  const DeviceGuard guard(dev.index);
  const cudaStream_t st = stream_on(stream, dev, "linear_pair_forward");
  const std::pair<const Tensor*, Tensor*> outs[] = {{&w1, &y1}, {&w2, &y2}};
  switch (p) {
    case GemmPrecision::Fp32:
      for (auto [w, y] : outs) gemm_nt_checked(x, *w, true, *y, 0.0f, p, st);
      return;
    case GemmPrecision::Bf16: {
      const DeviceScratch xb = bf16_copy(x, st);
      for (auto [w, y] : outs) {
        DeviceScratch local;
        gemm_rowmajor(false, true, T, w->dim(0), in, plain(xb.get(), DType::BF16),
                      plain(weight_bf16(*w, local, st), DType::BF16), f32_mut(*y), 0.0f, st);
      }
      return;
    }
    case GemmPrecision::Fp8: {
      const Fp8GemmInput qx = activation_fp8(f32(x), T, in, st);
      for (auto [w, y] : outs) {
        const std::int64_t N = w->dim(0);
        if (fp8_trivial(T, N, in, f32_mut(*y), 0.0f, st)) continue;
        Fp8GemmInput local;
        fp8_gemm_nt(qx, weight_fp8(*w, false, padded_rows(N), padded_k(in), local, st), f32_mut(*y), T, N, in, 0.0f,
                    st);
      }
      return;
    }
  }
  CRUCIBLE_FAIL("linear_pair_forward: unknown GemmPrecision ", static_cast<int>(p));
}

void linear_pair_backward(const Tensor& dy1, const Tensor& dy2, const Tensor& x, const Tensor& w1, const Tensor& w2,
                          Tensor& dx, Tensor& dw1, Tensor& dw2, GemmPrecision p, const Stream& stream) {
  const char* op = "linear_pair_backward";
  const Device dev = check_pair(x, w1, w2, op);
  const std::int64_t T = x.dim(0), in = x.dim(1);
  check_matrix(dy1, op, "dy1", dev, T, w1.dim(0));
  check_matrix(dy2, op, "dy2", dev, T, w2.dim(0));
  check_matrix(dw1, op, "dw1", dev, w1.dim(0), in);
  check_matrix(dw2, op, "dw2", dev, w2.dim(0), in);
  if (dx.defined()) check_matrix(dx, op, "dx", dev, T, in);
  const DeviceGuard guard(dev.index);
  const cudaStream_t st = stream_on(stream, dev, op);
  struct Part {
    const Tensor *dy, *w, *dw;
  };
  const Part parts[] = {{&dy1, &w1, &dw1}, {&dy2, &w2, &dw2}};
  // Dgrad: dx = dy1 W1, then dx += dy2 W2 (beta 1: the epilogue's FP32 add is axpy's).
  float beta = 0.0f;
  switch (p) {
    case GemmPrecision::Fp32: {
      for (const Part& q : parts) {
        if (dx.defined()) gemm_plain(false, false, T, in, q.w->dim(0), *q.dy, *q.w, true, f32_mut(dx), beta, p, st);
        beta = 1.0f;
      }
      for (const Part& q : parts) gemm_plain(true, false, q.w->dim(0), in, T, *q.dy, x, false, f32_mut(*q.dw), 1.0f, p, st);
      return;
    }
    case GemmPrecision::Bf16: {  // each dy rounded once for its Dgrad and Wgrad, x once for both
      const DeviceScratch xb = bf16_copy(x, st);
      for (const Part& q : parts) {
        const DeviceScratch dyb = bf16_copy(*q.dy, st);
        if (dx.defined()) bf16_dgrad(dyb, *q.w, T, in, q.w->dim(0), f32_mut(dx), beta, st);
        bf16_wgrad(dyb, xb, T, in, q.w->dim(0), f32_mut(*q.dw), st);
        beta = 1.0f;
      }
      return;
    }
    case GemmPrecision::Fp8: {
      for (const Part& q : parts) {
        const std::int64_t out = q.w->dim(0);
        if (dx.defined() && !fp8_trivial(T, in, out, f32_mut(dx), beta, st)) {
          Fp8GemmInput local;
          const Fp8GemmInput& qwt = weight_fp8(*q.w, true, padded_rows(in), padded_k(out), local, st);
          fp8_gemm_nt(activation_fp8(f32(*q.dy), T, out, st), qwt, f32_mut(dx), T, in, out, beta, st);
        }
        beta = 1.0f;
      }
      if (T == 0) return;  // Wgrad of no tokens adds nothing (fp8_trivial's K = 0 case)
      const Fp8GemmInput qxt = quantize_transposed(f32(x), T, in, st);  // x^T once
      for (const Part& q : parts) {
        const std::int64_t out = q.w->dim(0);
        if (fp8_trivial(out, in, T, f32_mut(*q.dw), 1.0f, st)) continue;
        fp8_gemm_nt(quantize_transposed(f32(*q.dy), T, out, st), qxt, f32_mut(*q.dw), out, in, T, 1.0f, st);
      }
      return;
    }
  }
  CRUCIBLE_FAIL("linear_pair_backward: unknown GemmPrecision ", static_cast<int>(p));
}

}  // namespace crucible::cuda
