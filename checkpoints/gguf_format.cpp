// checkpoints/gguf_format.cpp: GGUF value types, ggml type geometry, typed values, Q8_0.
//
// Invariant: the type table matches ggml (ggml.h enum ggml_type, gguf-py constants.py
// GGML_QUANT_SIZES); a GgufValue never changes its GGUF type; Q8_0 quantization is
// bit-exact with ggml's reference (quantize_row_q8_0_ref).
// Reference: reference/checkpoint_formats.md §4.1-4.2.
#include "checkpoints/gguf_format.h"

#include <cmath>
#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "core/numerics.h"

namespace crucible::checkpoints {

std::string_view gguf_type_name(GgufType t) {
  switch (t) {
    case GgufType::U8: return "u8";
    case GgufType::I8: return "i8";
    case GgufType::U16: return "u16";
    case GgufType::I16: return "i16";
    case GgufType::U32: return "u32";
    case GgufType::I32: return "i32";
    case GgufType::F32: return "f32";
    case GgufType::Bool: return "bool";
    case GgufType::String: return "string";
    case GgufType::Array: return "array";
    case GgufType::U64: return "u64";
    case GgufType::I64: return "i64";
    case GgufType::F64: return "f64";
  }
  return "?";
}

bool gguf_type_valid(std::uint32_t raw) { return raw <= 12; }

std::size_t gguf_scalar_size(GgufType t) {
  switch (t) {
    case GgufType::U8: case GgufType::I8: case GgufType::Bool: return 1;
    case GgufType::U16: case GgufType::I16: return 2;
    case GgufType::U32: case GgufType::I32: case GgufType::F32: return 4;
    case GgufType::U64: case GgufType::I64: case GgufType::F64: return 8;
    case GgufType::String: case GgufType::Array: return 0;
  }
  return 0;
}

std::optional<GgmlTypeTraits> ggml_type_traits(std::uint32_t raw) {
  constexpr std::int64_t K = 256;  // QK_K
  switch (raw) {
    case 0: return GgmlTypeTraits{"f32", 1, 4};
    case 1: return GgmlTypeTraits{"f16", 1, 2};
    case 2: return GgmlTypeTraits{"q4_0", 32, 2 + 16};
    case 3: return GgmlTypeTraits{"q4_1", 32, 2 + 2 + 16};
    case 6: return GgmlTypeTraits{"q5_0", 32, 2 + 4 + 16};
    case 7: return GgmlTypeTraits{"q5_1", 32, 2 + 2 + 4 + 16};
    case 8: return GgmlTypeTraits{"q8_0", 32, 2 + 32};
    case 9: return GgmlTypeTraits{"q8_1", 32, 2 + 2 + 32};
    case 10: return GgmlTypeTraits{"q2_K", K, 2 + 2 + K / 16 + K / 4};
    case 11: return GgmlTypeTraits{"q3_K", K, 2 + K / 4 + K / 8 + 12};
    case 12: return GgmlTypeTraits{"q4_K", K, 2 + 2 + K / 2 + 12};
    case 13: return GgmlTypeTraits{"q5_K", K, 2 + 2 + K / 2 + K / 8 + 12};
    case 14: return GgmlTypeTraits{"q6_K", K, 2 + K / 2 + K / 4 + K / 16};
    case 15: return GgmlTypeTraits{"q8_K", K, 4 + K + K / 8};
    case 16: return GgmlTypeTraits{"iq2_xxs", K, 2 + K / 4};
    case 17: return GgmlTypeTraits{"iq2_xs", K, 2 + K / 4 + K / 32};
    case 18: return GgmlTypeTraits{"iq3_xxs", K, 2 + K / 4 + K / 8};
    case 19: return GgmlTypeTraits{"iq1_s", K, 2 + K / 8 + K / 16};
    case 20: return GgmlTypeTraits{"iq4_nl", 32, 2 + 16};
    case 21: return GgmlTypeTraits{"iq3_s", K, 2 + K / 4 + K / 8 + K / 32 + 4};
    case 22: return GgmlTypeTraits{"iq2_s", K, 2 + K / 4 + K / 16};
    case 23: return GgmlTypeTraits{"iq4_xs", K, 2 + 2 + K / 2 + K / 64};
    case 24: return GgmlTypeTraits{"i8", 1, 1};
    case 25: return GgmlTypeTraits{"i16", 1, 2};
    case 26: return GgmlTypeTraits{"i32", 1, 4};
    case 27: return GgmlTypeTraits{"i64", 1, 8};
    case 28: return GgmlTypeTraits{"f64", 1, 8};
    case 29: return GgmlTypeTraits{"iq1_m", K, K / 8 + K / 16 + K / 32};
    case 30: return GgmlTypeTraits{"bf16", 1, 2};
    case 34: return GgmlTypeTraits{"tq1_0", K, 2 + 4 * 13};
    case 35: return GgmlTypeTraits{"tq2_0", K, 2 + 64};
    case 39: return GgmlTypeTraits{"mxfp4", 32, 1 + 16};
    default: return std::nullopt;
  }
}

const GgmlTypeTraits& ggml_traits(GgmlType t) {
  // One static table filled on first use; every enumerator has an entry.
  static const std::vector<std::optional<GgmlTypeTraits>> table = [] {
    std::vector<std::optional<GgmlTypeTraits>> v(40);
    for (std::uint32_t i = 0; i < v.size(); ++i) v[i] = ggml_type_traits(i);
    return v;
  }();
  const auto raw = static_cast<std::uint32_t>(t);
  CRUCIBLE_CHECK(raw < table.size() && table[raw], "unknown ggml type id ", raw);
  return *table[raw];
}

std::uint64_t ggml_nbytes(GgmlType type, const std::vector<std::int64_t>& ne) {
  const GgmlTypeTraits& tr = ggml_traits(type);
  CRUCIBLE_CHECK(!ne.empty() && ne.size() <= static_cast<std::size_t>(kGgufMaxDims), "GGUF tensors have 1 to ",
                 kGgufMaxDims, " dims, got ", ne.size());
  CRUCIBLE_USER_CHECK(ne[0] % tr.block == 0, "a ", tr.name, " tensor needs ne[0] to be a multiple of ", tr.block,
                      ", got ", ne[0]);
  std::uint64_t rows = 1;
  for (std::size_t i = 1; i < ne.size(); ++i) rows *= static_cast<std::uint64_t>(ne[i]);
  return rows * static_cast<std::uint64_t>(ne[0] / tr.block) * static_cast<std::uint64_t>(tr.bytes);
}

// ---------------------------------------------------------------------------------------
// GgufValue

GgufValue GgufValue::scalar_u(GgufType t, std::uint64_t v) {
  GgufValue x;
  x.type_ = t;
  x.u_ = v;
  return x;
}

GgufValue GgufValue::scalar_i(GgufType t, std::int64_t v) {
  GgufValue x;
  x.type_ = t;
  x.i_ = v;
  return x;
}

GgufValue GgufValue::f32(float v) {
  GgufValue x;
  x.type_ = GgufType::F32;
  x.f_ = v;
  return x;
}

GgufValue GgufValue::f64(double v) {
  GgufValue x;
  x.type_ = GgufType::F64;
  x.f_ = v;
  return x;
}

GgufValue GgufValue::boolean(bool v) {
  GgufValue x;
  x.type_ = GgufType::Bool;
  x.u_ = v ? 1 : 0;
  return x;
}

GgufValue GgufValue::string(std::string v) {
  GgufValue x;
  x.type_ = GgufType::String;
  x.s_ = std::move(v);
  return x;
}

GgufValue GgufValue::array(GgufType elem, std::vector<GgufValue> items) {
  CRUCIBLE_CHECK(elem != GgufType::Array, "nested GGUF arrays are not supported (ggml rejects them)");
  for (const GgufValue& it : items)
    CRUCIBLE_CHECK(it.type_ == elem, "GGUF array of ", gguf_type_name(elem), " holds a ",
                   gguf_type_name(it.type_));
  GgufValue x;
  x.type_ = GgufType::Array;
  x.elem_ = elem;
  x.items_ = std::move(items);
  return x;
}

GgufValue GgufValue::string_array(const std::vector<std::string>& v) {
  std::vector<GgufValue> items;
  items.reserve(v.size());
  for (const std::string& s : v) items.push_back(string(s));
  return array(GgufType::String, std::move(items));
}

GgufValue GgufValue::i32_array(const std::vector<std::int32_t>& v) {
  std::vector<GgufValue> items;
  items.reserve(v.size());
  for (std::int32_t x : v) items.push_back(i32(x));
  return array(GgufType::I32, std::move(items));
}

GgufValue GgufValue::f32_array(const std::vector<float>& v) {
  std::vector<GgufValue> items;
  items.reserve(v.size());
  for (float x : v) items.push_back(f32(x));
  return array(GgufType::F32, std::move(items));
}

void GgufValue::expect(bool ok, std::string_view what) const {
  CRUCIBLE_USER_CHECK(ok, "GGUF value: expected ", what, ", got ", gguf_type_name(type_));
}

std::uint64_t GgufValue::as_uint() const {
  expect(type_ == GgufType::U8 || type_ == GgufType::U16 || type_ == GgufType::U32 || type_ == GgufType::U64,
         "an unsigned integer");
  return u_;
}

std::int64_t GgufValue::as_int() const {
  expect(type_ == GgufType::I8 || type_ == GgufType::I16 || type_ == GgufType::I32 || type_ == GgufType::I64,
         "a signed integer");
  return i_;
}

double GgufValue::as_float() const {
  expect(type_ == GgufType::F32 || type_ == GgufType::F64, "a float");
  return f_;
}

bool GgufValue::as_bool() const {
  expect(type_ == GgufType::Bool, "a bool");
  return u_ != 0;
}

const std::string& GgufValue::as_string() const {
  expect(type_ == GgufType::String, "a string");
  return s_;
}

const std::vector<GgufValue>& GgufValue::items() const {
  expect(type_ == GgufType::Array, "an array");
  return items_;
}

bool operator==(const GgufValue& a, const GgufValue& b) {
  if (a.type_ != b.type_) return false;
  switch (a.type_) {
    case GgufType::String: return a.s_ == b.s_;
    case GgufType::Array: return a.elem_ == b.elem_ && a.items_ == b.items_;
    case GgufType::F32: case GgufType::F64:
      return std::memcmp(&a.f_, &b.f_, sizeof a.f_) == 0;  // bitwise: NaN == NaN, -0 != 0
    default: return a.u_ == b.u_ && a.i_ == b.i_;
  }
}

// ---------------------------------------------------------------------------------------
// Q8_0

void quantize_q8_0(const float* x, std::int64_t n, std::uint8_t* out) {
  constexpr std::int64_t kBlock = 32;
  CRUCIBLE_CHECK(n % kBlock == 0, "Q8_0 needs a multiple of 32 values, got ", n);
  for (std::int64_t b = 0; b < n / kBlock; ++b) {
    const float* xb = x + b * kBlock;
    float amax = 0.0f;
    for (std::int64_t j = 0; j < kBlock; ++j) {
      CRUCIBLE_USER_CHECK(std::isfinite(xb[j]), "Q8_0: value ", b * kBlock + j, " is ", xb[j],
                          "; only finite weights can be quantized");
      amax = std::max(amax, std::fabs(xb[j]));
    }
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    std::uint8_t* ob = out + b * 34;
    const std::uint16_t dh = f32_to_f16(d);
    ob[0] = static_cast<std::uint8_t>(dh & 0xFF);
    ob[1] = static_cast<std::uint8_t>(dh >> 8);
    for (std::int64_t j = 0; j < kBlock; ++j) {
      const float q = std::round(xb[j] * id);  // roundf: ties away from zero, as ggml
      ob[2 + j] = static_cast<std::uint8_t>(static_cast<std::int8_t>(q));
    }
  }
}

void dequantize_q8_0(const std::uint8_t* in, std::int64_t n, float* out) {
  constexpr std::int64_t kBlock = 32;
  CRUCIBLE_CHECK(n % kBlock == 0, "Q8_0 needs a multiple of 32 values, got ", n);
  for (std::int64_t b = 0; b < n / kBlock; ++b) {
    const std::uint8_t* ib = in + b * 34;
    const float d = f16_to_f32(static_cast<std::uint16_t>(ib[0] | (ib[1] << 8)));
    for (std::int64_t j = 0; j < kBlock; ++j)
      out[b * kBlock + j] = d * static_cast<float>(static_cast<std::int8_t>(ib[2 + j]));
  }
}

}  // namespace crucible::checkpoints
