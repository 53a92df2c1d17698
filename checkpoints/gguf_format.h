// checkpoints/gguf_format.h: the vocabulary of GGUF v3 shared by the writer and the reader.
//
// GGUF (ggml docs/gguf.md, include/gguf.h): a little-endian file of a header, typed
// key/value metadata, tensor infos and an aligned data section. This header names the
// metadata value types (GgufType), the ggml tensor types with their block geometry
// (GgmlType, ggml_type_traits) and a metadata value (GgufValue) that keeps its exact
// GGUF type, because llama.cpp rejects a key whose type differs from the one it reads
// (u32 counts, f32 epsilons, bool flags: reference/checkpoint_formats.md §4.2).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace crucible::checkpoints {

inline constexpr std::uint32_t kGgufMagic = 0x46554747;  // "GGUF" read as a little-endian u32
inline constexpr std::uint32_t kGgufVersion = 3;
inline constexpr std::uint32_t kGgufDefaultAlignment = 32;
inline constexpr std::size_t kGgufMaxTensorName = 63;  // GGML_MAX_NAME - 1 (the NUL)
inline constexpr int kGgufMaxDims = 4;                  // GGML_MAX_DIMS
inline constexpr std::uint32_t kGgmlQuantVersion = 2;   // GGML_QNT_VERSION

// Metadata value types (gguf.h enum gguf_type).
enum class GgufType : std::uint32_t {
  U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, Bool = 7,
  String = 8, Array = 9, U64 = 10, I64 = 11, F64 = 12,
};
std::string_view gguf_type_name(GgufType t);  // "u32", "string", ...
bool gguf_type_valid(std::uint32_t raw);
std::size_t gguf_scalar_size(GgufType t);     // bytes of a fixed-size scalar; 0 for String/Array

// ggml tensor types (ggml.h enum ggml_type); removed ids 4, 5, 31-33, 36-38 are invalid.
enum class GgmlType : std::uint32_t {
  F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
  Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15,
  IQ2_XXS = 16, IQ2_XS = 17, IQ3_XXS = 18, IQ1_S = 19, IQ4_NL = 20, IQ3_S = 21, IQ2_S = 22,
  IQ4_XS = 23, I8 = 24, I16 = 25, I32 = 26, I64 = 27, F64 = 28, IQ1_M = 29, BF16 = 30,
  TQ1_0 = 34, TQ2_0 = 35, MXFP4 = 39,
};

struct GgmlTypeTraits {
  std::string_view name;     // "f32", "q8_0", ...
  std::int64_t block = 0;    // elements per block (ne[0] must be a multiple)
  std::int64_t bytes = 0;    // bytes per block
};
// nullopt for ids that are not ggml types this reader knows.
std::optional<GgmlTypeTraits> ggml_type_traits(std::uint32_t raw);
const GgmlTypeTraits& ggml_traits(GgmlType t);  // t must be a listed enumerator

// LlamaFileType (general.file_type).
enum class GgufFileType : std::uint32_t { AllF32 = 0, MostlyF16 = 1, MostlyQ8_0 = 7, MostlyBF16 = 32 };

// One metadata value with its exact GGUF type. Arrays hold items of one scalar or
// string type: the spec allows nested arrays but ggml's reader rejects them, so
// neither the writer nor the reader here accepts them.
class GgufValue {
 public:
  GgufValue() = default;  // a u8 0; use the factories
  static GgufValue u8(std::uint8_t v) { return scalar_u(GgufType::U8, v); }
  static GgufValue u16(std::uint16_t v) { return scalar_u(GgufType::U16, v); }
  static GgufValue u32(std::uint32_t v) { return scalar_u(GgufType::U32, v); }
  static GgufValue u64(std::uint64_t v) { return scalar_u(GgufType::U64, v); }
  static GgufValue i8(std::int8_t v) { return scalar_i(GgufType::I8, v); }
  static GgufValue i16(std::int16_t v) { return scalar_i(GgufType::I16, v); }
  static GgufValue i32(std::int32_t v) { return scalar_i(GgufType::I32, v); }
  static GgufValue i64(std::int64_t v) { return scalar_i(GgufType::I64, v); }
  static GgufValue f32(float v);
  static GgufValue f64(double v);
  static GgufValue boolean(bool v);
  static GgufValue string(std::string v);
  // An array of `elem` items; every item must have that type.
  static GgufValue array(GgufType elem, std::vector<GgufValue> items);
  static GgufValue string_array(const std::vector<std::string>& v);
  static GgufValue i32_array(const std::vector<std::int32_t>& v);
  static GgufValue f32_array(const std::vector<float>& v);

  GgufType type() const { return type_; }
  GgufType elem_type() const { return elem_; }  // arrays only
  // Checked accessors: throw crucible::Error naming the expected and actual type.
  std::uint64_t as_uint() const;  // U8/U16/U32/U64
  std::int64_t as_int() const;    // I8/I16/I32/I64
  double as_float() const;        // F32/F64
  bool as_bool() const;
  const std::string& as_string() const;
  const std::vector<GgufValue>& items() const;  // Array
  std::size_t size() const { return items_.size(); }

  friend bool operator==(const GgufValue& a, const GgufValue& b);

 private:
  static GgufValue scalar_u(GgufType t, std::uint64_t v);
  static GgufValue scalar_i(GgufType t, std::int64_t v);
  void expect(bool ok, std::string_view what) const;

  GgufType type_ = GgufType::U8;
  GgufType elem_ = GgufType::U8;
  std::uint64_t u_ = 0;  // unsigned ints and bool
  std::int64_t i_ = 0;   // signed ints
  double f_ = 0;         // F32 (exactly representable) and F64
  std::string s_;
  std::vector<GgufValue> items_;
};

// Bytes of a tensor of `type` with ggml dims `ne` (ne[0] innermost); checks that
// ne[0] is a multiple of the block size.
std::uint64_t ggml_nbytes(GgmlType type, const std::vector<std::int64_t>& ne);

// Q8_0 blocks of 32 values -> 34 bytes: fp16 d = amax/127, then 32 int8
// q = roundf(x * (1/d)) (ties away from zero), value = d * q. Bit-exact with ggml's
// quantize_row_q8_0_ref and gguf-py quants.py (which multiply by 1/d, not divide by d).
// n must be a multiple of 32; `out` holds n / 32 * 34 bytes.
void quantize_q8_0(const float* x, std::int64_t n, std::uint8_t* out);
void dequantize_q8_0(const std::uint8_t* in, std::int64_t n, float* out);

inline std::uint64_t gguf_pad(std::uint64_t n, std::uint64_t align) { return (n + align - 1) / align * align; }

}  // namespace crucible::checkpoints
