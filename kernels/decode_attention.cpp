// kernels/decode_attention.cpp: validation and device dispatch of decode attention over
// a KV cache, the cache append and the MLA absorption products
// (kernels/decode_attention.h).
//
// Each op checks dtypes, shapes and that its tensors share one device, then runs the
// CPU reference (kernels/cpu/decode_attention.cpp) or the CUDA twin (kernels/cuda/
// decode_attention.cu). Values of slot, len and pos belong to the backends: the CPU
// throws naming the token; the CUDA kernels print it and trap.
#include "kernels/decode_attention.h"

#include "core/error.h"
#include "kernels/cpu/decode_attention_cpu.h"
#include "kernels/op_checks.h"
#ifdef CRUCIBLE_WITH_CUDA
#include "kernels/cuda/decode_attention_cuda.h"
#endif

namespace crucible::ops {

namespace {

using detail::check_tensor;
using detail::describe;
using detail::device_of;
using detail::fail_no_cuda;

[[maybe_unused]] const float* f32(const Tensor& t) { return static_cast<const float*>(t.raw()); }
[[maybe_unused]] float* f32_out(Tensor& t) { return static_cast<float*>(t.raw()); }
[[maybe_unused]] const std::int32_t* i32(const Tensor& t) { return static_cast<const std::int32_t*>(t.raw()); }

void check_cache_dtype(const Tensor& c, const char* op, const char* role) {
  CRUCIBLE_CHECK(c.defined() && (c.dtype() == DType::F32 || c.dtype() == DType::BF16), op, ": ",
                 c.defined() ? describe(c, role) : std::string(role), " must be an f32 or bf16 tensor, got ",
                 c.defined() ? dtype_name(c.dtype()) : "undefined");
}

// slot and len (or pos) [T] i32 on dev.
void check_index(const Tensor& t, Device dev, const char* op, const char* role, std::int64_t T) {
  check_tensor(t, dev, op, role, DType::I32, Shape{T});
}

void check_max_len(std::int64_t max_len, std::int64_t capacity, const char* op) {
  CRUCIBLE_CHECK(max_len >= 0 && max_len <= capacity, op, ": max_len = ", max_len,
                 " must be in [0, capacity = ", capacity, "]");
}

}  // namespace

void gqa_decode(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache, const Tensor& slot,
                const Tensor& len, std::int64_t max_len, float scale, Tensor& out, const Stream& stream) {
  const char* op = "gqa_decode";
  const Device dev = device_of(q, op, "q");
  check_tensor(q, dev, op, "q", DType::F32);
  CRUCIBLE_CHECK(q.rank() == 3, op, ": ", describe(q, "q"), " must be [tokens, heads, d]");
  check_cache_dtype(k_cache, op, "k_cache");
  CRUCIBLE_CHECK(k_cache.rank() == 4, op, ": ", describe(k_cache, "k_cache"),
                 " must be [slots, capacity, kv_heads, d]");
  const std::int64_t T = q.dim(0), Hq = q.dim(1), d = q.dim(2);
  const std::int64_t slots = k_cache.dim(0), capacity = k_cache.dim(1), Hkv = k_cache.dim(2);
  check_tensor(k_cache, dev, op, "k_cache", k_cache.dtype(), Shape{slots, capacity, Hkv, d});
  check_tensor(v_cache, dev, op, "v_cache", k_cache.dtype(), k_cache.shape());
  CRUCIBLE_CHECK(Hkv > 0 && Hq % Hkv == 0, op, ": query heads ", Hq, " (", describe(q, "q"),
                 ") must be a multiple of kv heads ", Hkv, " (", describe(k_cache, "k_cache"), ")");
  check_index(slot, dev, op, "slot", T);
  check_index(len, dev, op, "len", T);
  check_tensor(out, dev, op, "out", DType::F32, q.shape());
  check_max_len(max_len, capacity, op);
  if (dev.is_cpu()) return cpu::gqa_decode(q, k_cache, v_cache, slot, len, max_len, scale, out);
#ifdef CRUCIBLE_WITH_CUDA
  cuda::gqa_decode(f32(q), k_cache.raw(), v_cache.raw(), k_cache.dtype() == DType::BF16, i32(slot), i32(len),
                   {T, Hq, slots, capacity, max_len}, Hkv, d, scale, f32_out(out), stream.handle());
#else
  (void)stream;
  fail_no_cuda(op, dev);
#endif
}

void mla_decode(const Tensor& q_lat, const Tensor& q_rope, const Tensor& ckv_cache, const Tensor& kpe_cache,
                const Tensor& slot, const Tensor& len, std::int64_t max_len, float scale, Tensor& out_lat,
                const Stream& stream) {
  const char* op = "mla_decode";
  const Device dev = device_of(q_lat, op, "q_lat");
  check_tensor(q_lat, dev, op, "q_lat", DType::F32);
  CRUCIBLE_CHECK(q_lat.rank() == 3, op, ": ", describe(q_lat, "q_lat"), " must be [tokens, heads, kv_lora_rank]");
  check_tensor(q_rope, dev, op, "q_rope", DType::F32);
  CRUCIBLE_CHECK(q_rope.rank() == 3 && q_rope.dim(0) == q_lat.dim(0) && q_rope.dim(1) == q_lat.dim(1), op, ": ",
                 describe(q_rope, "q_rope"), " must be [tokens, heads, rope] with the tokens and heads of ",
                 describe(q_lat, "q_lat"));
  const std::int64_t T = q_lat.dim(0), R = q_lat.dim(2), P = q_rope.dim(2);
  [[maybe_unused]] const std::int64_t Hq = q_lat.dim(1);
  check_cache_dtype(ckv_cache, op, "ckv_cache");
  CRUCIBLE_CHECK(ckv_cache.rank() == 3 && ckv_cache.dim(2) == R, op, ": ", describe(ckv_cache, "ckv_cache"),
                 " must be [slots, capacity, ", R, "] (the latent width of ", describe(q_lat, "q_lat"), ")");
  const std::int64_t slots = ckv_cache.dim(0), capacity = ckv_cache.dim(1);
  check_tensor(ckv_cache, dev, op, "ckv_cache", ckv_cache.dtype());
  check_tensor(kpe_cache, dev, op, "kpe_cache", ckv_cache.dtype(), Shape{slots, capacity, P});
  check_index(slot, dev, op, "slot", T);
  check_index(len, dev, op, "len", T);
  check_tensor(out_lat, dev, op, "out_lat", DType::F32, q_lat.shape());
  check_max_len(max_len, capacity, op);
  if (dev.is_cpu())
    return cpu::mla_decode(q_lat, q_rope, ckv_cache, kpe_cache, slot, len, max_len, scale, out_lat);
#ifdef CRUCIBLE_WITH_CUDA
  cuda::mla_decode(f32(q_lat), f32(q_rope), ckv_cache.raw(), kpe_cache.raw(), ckv_cache.dtype() == DType::BF16,
                   i32(slot), i32(len), {T, Hq, slots, capacity, max_len}, R, P, scale, f32_out(out_lat),
                   stream.handle());
#else
  (void)stream;
  fail_no_cuda(op, dev);
#endif
}

void kv_cache_append(const Tensor& src, const Tensor& slot, const Tensor& pos, Tensor& cache,
                     const Stream& stream) {
  const char* op = "kv_cache_append";
  const Device dev = device_of(cache, op, "cache");
  check_cache_dtype(cache, op, "cache");
  check_tensor(cache, dev, op, "cache", cache.dtype());
  check_tensor(src, dev, op, "src", DType::F32);
  CRUCIBLE_CHECK(cache.rank() >= 3 && src.rank() == cache.rank() - 1, op, ": ", describe(cache, "cache"),
                 " must be [slots, capacity, ...] and ", describe(src, "src"), " [tokens, ...]");
  for (int i = 1; i < src.rank(); ++i)
    CRUCIBLE_CHECK(src.dim(i) == cache.dim(i + 1), op, ": ", describe(src, "src"),
                   " must have the trailing dims of ", describe(cache, "cache"));
  const std::int64_t T = src.dim(0);
  check_index(slot, dev, op, "slot", T);
  check_index(pos, dev, op, "pos", T);
  if (dev.is_cpu()) return cpu::kv_cache_append(src, slot, pos, cache);
#ifdef CRUCIBLE_WITH_CUDA
  const std::int64_t width = cache.numel() == 0 ? 0 : cache.numel() / (cache.dim(0) * cache.dim(1));
  cuda::kv_cache_append(f32(src), i32(slot), i32(pos), cache.raw(), cache.dtype() == DType::BF16, T, width,
                        cache.dim(0), cache.dim(1), stream.handle());
#else
  (void)stream;
  fail_no_cuda(op, dev);
#endif
}

void mla_absorb_query(const Tensor& q, std::int64_t nope, const Tensor& kv_b, Tensor& q_lat,
                      const Stream& stream) {
  const char* op = "mla_absorb_query";
  const Device dev = device_of(q, op, "q");
  check_tensor(q, dev, op, "q", DType::F32);
  check_tensor(kv_b, dev, op, "kv_b", DType::F32);
  check_tensor(q_lat, dev, op, "q_lat", DType::F32);
  CRUCIBLE_CHECK(q.rank() == 3 && nope >= 0 && nope <= q.dim(2), op, ": ", describe(q, "q"),
                 " must be [tokens, heads, nope + rope] with nope = ", nope);
  const std::int64_t T = q.dim(0), Hq = q.dim(1);
  CRUCIBLE_CHECK(q_lat.rank() == 3 && q_lat.dim(0) == T && q_lat.dim(1) == Hq, op, ": ",
                 describe(q_lat, "q_lat"), " must be [", T, ", ", Hq, ", kv_lora_rank]");
  const std::int64_t R = q_lat.dim(2);
  CRUCIBLE_CHECK(kv_b.rank() == 2 && kv_b.dim(1) == R && Hq > 0 && kv_b.dim(0) % Hq == 0 &&
                     kv_b.dim(0) / Hq >= nope,
                 op, ": ", describe(kv_b, "kv_b"), " must be [heads (nope + v_head_dim), ", R, "] for ",
                 describe(q_lat, "q_lat"));
  if (dev.is_cpu()) return cpu::mla_absorb_query(q, nope, kv_b, q_lat);
#ifdef CRUCIBLE_WITH_CUDA
  cuda::mla_absorb_query(f32(q), f32(kv_b), f32_out(q_lat), T, Hq, q.dim(2), nope, kv_b.dim(0) / Hq - nope, R,
                         stream.handle());
#else
  (void)stream;
  fail_no_cuda(op, dev);
#endif
}

void mla_absorb_output(const Tensor& out_lat, std::int64_t nope, const Tensor& kv_b, Tensor& o,
                       const Stream& stream) {
  const char* op = "mla_absorb_output";
  const Device dev = device_of(out_lat, op, "out_lat");
  check_tensor(out_lat, dev, op, "out_lat", DType::F32);
  check_tensor(kv_b, dev, op, "kv_b", DType::F32);
  check_tensor(o, dev, op, "o", DType::F32);
  CRUCIBLE_CHECK(out_lat.rank() == 3, op, ": ", describe(out_lat, "out_lat"), " must be [tokens, heads, R]");
  const std::int64_t T = out_lat.dim(0), Hq = out_lat.dim(1), R = out_lat.dim(2);
  CRUCIBLE_CHECK(o.rank() == 3 && o.dim(0) == T && o.dim(1) == Hq, op, ": ", describe(o, "o"), " must be [", T,
                 ", ", Hq, ", v_head_dim]");
  const std::int64_t dv = o.dim(2);
  CRUCIBLE_CHECK(kv_b.rank() == 2 && kv_b.dim(1) == R && nope >= 0 && kv_b.dim(0) == Hq * (nope + dv), op, ": ",
                 describe(kv_b, "kv_b"), " must be [", Hq, " x (", nope, " + ", dv, "), ", R, "]");
  if (dev.is_cpu()) return cpu::mla_absorb_output(out_lat, nope, kv_b, o);
#ifdef CRUCIBLE_WITH_CUDA
  cuda::mla_absorb_output(f32(out_lat), f32(kv_b), f32_out(o), T, Hq, nope, dv, R, stream.handle());
#else
  (void)stream;
  fail_no_cuda(op, dev);
#endif
}

}  // namespace crucible::ops
