// core/numerics.cpp: float32 <-> BF16 / FP16 / FP8 E4M3 / FP8 E5M2 codecs.
//
// Invariant: every encode rounds ONCE, from the float32 bits, to nearest with ties to
// even, as if the target exponent range were unbounded above; only then is overflow
// decided (against the largest finite code). Decodes are exact (every narrow value
// is a float32). Overflow/NaN rules are those of core/numerics.h, i.e. CUDA's
// cvt.rn(.satfinite) and cuda_fp8.hpp (__nv_cvt_float_to_fp8).
// Reference: OCP 8-bit Floating Point Specification (OFP8) rev 1.0, §4-5 (E4M3:
// bias 7, S.1111.111 the only NaN, no infinities; E5M2: IEEE-like, bias 15);
// IEEE 754-2019 §4.3 (roundTiesToEven) and §7.4 (overflow after rounding).
#include "core/numerics.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <limits>

#include "core/error.h"

namespace crucible {
namespace {

constexpr std::uint32_t kF32SignMask = 0x80000000u;
constexpr std::uint32_t kF32AbsMask = 0x7FFFFFFFu;
constexpr std::uint32_t kF32InfBits = 0x7F800000u;
constexpr int kF32MantBits = 23;
constexpr int kF32MinExp = -126;  // unbiased exponent of the smallest float32 normal

// A binary floating-point format narrower than float32, described by what the
// generic rounding needs. `max_finite` is the magnitude code of the largest finite
// value: codes above it are inf/NaN (or, for E4M3, only the NaN 0x7F).
struct NarrowFormat {
  int mant_bits;             // stored mantissa bits (M)
  int min_exp;               // unbiased exponent of the smallest normal, 1 - bias
  std::uint32_t max_finite;  // magnitude code of the largest finite value
};

constexpr NarrowFormat kBF16{7, -126, 0x7F7F};
constexpr NarrowFormat kF16{10, -14, 0x7BFF};
constexpr NarrowFormat kE4M3{3, -6, 0x7E};
constexpr NarrowFormat kE5M2{2, -14, 0x7B};

// sig / 2^shift rounded to the nearest integer, ties to even. shift >= 1.
std::uint32_t shift_right_rne(std::uint32_t sig, int shift) {
  // sig < 2^24, so for shift >= 26 the quotient and the remainder's half-point
  // make the result 0; clamp to keep the shifts defined.
  if (shift >= 26) return 0;
  const std::uint32_t q = sig >> shift;
  const std::uint32_t rem = sig & ((1u << shift) - 1u);
  const std::uint32_t half = 1u << (shift - 1);
  return (rem > half || (rem == half && (q & 1u))) ? q + 1u : q;
}

// Rounds a finite float32 magnitude (sign bit clear) into `f` and returns the
// magnitude code: exponent field << M | mantissa field. The code may exceed
// f.max_finite (overflow, decided by the caller) but never wraps.
//
// Why one formula covers normals, subnormals and carries: with target exponent
// te = max(e, min_exp), the rounded significand r = round(|x| / 2^(te - M)) and the
// code ((te - min_exp) << M) + r. For a target subnormal (te = min_exp) r < 2^M is
// the mantissa field directly; r = 2^M lands on the smallest normal; for normals r in
// [2^M, 2^(M+1)] supplies the implicit bit as +1 on the exponent field, and a round-up
// to 2^(M+1) carries into the next binade. The codes are monotone in the value.
std::uint32_t round_magnitude(std::uint32_t abs_bits, const NarrowFormat& f) {
  const int exp_field = static_cast<int>(abs_bits >> kF32MantBits);
  std::uint32_t sig = abs_bits & ((1u << kF32MantBits) - 1u);
  int e = kF32MinExp;  // float32 subnormal: no implicit bit, exponent of the smallest normal
  if (exp_field != 0) {
    sig |= 1u << kF32MantBits;
    e = exp_field - 127;
  }
  // |x| = sig * 2^(e - 23); the target quantum is 2^(te - M).
  const int te = std::max(e, f.min_exp);
  const int shift = (kF32MantBits - f.mant_bits) + (te - e);
  const std::uint32_t r = shift_right_rne(sig, shift);
  return (static_cast<std::uint32_t>(te - f.min_exp) << f.mant_bits) + r;
}

// Magnitude of a finite code (no sign bit) of `f` as float32; exact.
float decode_finite_magnitude(std::uint32_t mag, const NarrowFormat& f) {
  const std::uint32_t exp_field = mag >> f.mant_bits;
  const std::uint32_t mant = mag & ((1u << f.mant_bits) - 1u);
  if (exp_field == 0) return std::ldexp(static_cast<float>(mant), f.min_exp - f.mant_bits);
  return std::ldexp(static_cast<float>(mant | (1u << f.mant_bits)),
                    static_cast<int>(exp_field) - 1 + f.min_exp - f.mant_bits);
}

float with_sign(float magnitude, bool negative) { return negative ? -magnitude : magnitude; }

// Quiet float32 NaN with the given sign and the narrow payload moved to the top of
// the float32 mantissa (what cvt.f32.f16 does).
float make_nan(bool negative, std::uint32_t payload, int payload_bits) {
  const std::uint32_t bits = (negative ? kF32SignMask : 0u) | kF32InfBits | 0x00400000u |
                             (payload << (kF32MantBits - payload_bits));
  return std::bit_cast<float>(bits);
}

std::array<float, 256> build_fp8_table(DType format) {
  std::array<float, 256> table{};
  for (std::uint32_t code = 0; code < 256; ++code) {
    const bool negative = (code & 0x80u) != 0;
    const std::uint32_t mag = code & 0x7Fu;
    if (format == DType::E4M3) {
      table[code] = mag == 0x7Fu ? make_nan(negative, 0x7u, 3)
                                 : with_sign(decode_finite_magnitude(mag, kE4M3), negative);
    } else if (mag == 0x7Cu) {
      table[code] = with_sign(std::numeric_limits<float>::infinity(), negative);
    } else if (mag > 0x7Cu) {
      table[code] = make_nan(negative, mag & 0x3u, 2);
    } else {
      table[code] = with_sign(decode_finite_magnitude(mag, kE5M2), negative);
    }
  }
  return table;
}

// Decode tables, built once on first use (thread-safe static initialization).
const std::array<float, 256>& e4m3_table() {
  static const std::array<float, 256> table = build_fp8_table(DType::E4M3);
  return table;
}
const std::array<float, 256>& e5m2_table() {
  static const std::array<float, 256> table = build_fp8_table(DType::E5M2);
  return table;
}

}  // namespace

std::uint16_t f32_to_bf16(float x) {
  const std::uint32_t bits = std::bit_cast<std::uint32_t>(x);
  const auto sign = static_cast<std::uint16_t>((bits & kF32SignMask) >> 16);
  const std::uint32_t abs_bits = bits & kF32AbsMask;
  if (abs_bits > kF32InfBits) return sign | 0x7FC0u;  // canonical quiet NaN, sign kept
  if (abs_bits == kF32InfBits) return sign | 0x7F80u;
  // BF16 shares float32's exponent range, so only the mantissa is rounded; a carry out
  // of the largest binade (|x| >= 0x1.FFp127 + half an ulp) lands exactly on the inf
  // code 0x7F80, which is IEEE overflow. No larger code can come out.
  const std::uint32_t mag = round_magnitude(abs_bits, kBF16);
  return static_cast<std::uint16_t>(sign | mag);
}

float bf16_to_f32(std::uint16_t bits) {
  // BF16 is the top half of a float32: exact, NaN payloads included.
  return std::bit_cast<float>(static_cast<std::uint32_t>(bits) << 16);
}

std::uint16_t f32_to_f16(float x) {
  const std::uint32_t bits = std::bit_cast<std::uint32_t>(x);
  const auto sign = static_cast<std::uint16_t>((bits & kF32SignMask) >> 16);
  const std::uint32_t abs_bits = bits & kF32AbsMask;
  // NOTE: the header names no canonical FP16 NaN; 0x7E00 (quiet bit, sign kept)
  // mirrors the BF16 choice. CUDA's cvt.rn.f16.f32 gives 0x7FFF instead.
  if (abs_bits > kF32InfBits) return sign | 0x7E00u;
  if (abs_bits == kF32InfBits) return sign | 0x7C00u;
  const std::uint32_t mag = round_magnitude(abs_bits, kF16);
  // IEEE overflow (no saturation for FP16): anything past 65504 after rounding is inf.
  return static_cast<std::uint16_t>(sign | (mag > kF16.max_finite ? 0x7C00u : mag));
}

float f16_to_f32(std::uint16_t bits) {
  const bool negative = (bits & 0x8000u) != 0;
  const std::uint32_t mag = bits & 0x7FFFu;
  if (mag == 0x7C00u) return with_sign(std::numeric_limits<float>::infinity(), negative);
  if (mag > 0x7C00u) return make_nan(negative, mag & 0x3FFu, 10);
  return with_sign(decode_finite_magnitude(mag, kF16), negative);
}

std::uint8_t f32_to_e4m3(float x, bool saturate) {
  const std::uint32_t bits = std::bit_cast<std::uint32_t>(x);
  const auto sign = static_cast<std::uint8_t>((bits & kF32SignMask) >> 24);
  const std::uint32_t abs_bits = bits & kF32AbsMask;
  constexpr std::uint8_t kNaN = 0x7F;  // S.1111.111, the only E4M3 NaN
  // NaN inputs give the positive canonical NaN whatever their sign, as CUDA's
  // conversions do (cuda_fp8.hpp clears the sign of NaN), so the twins agree.
  if (abs_bits > kF32InfBits) return kNaN;
  // E4M3 has no infinity: inf is an overflow like any other.
  const std::uint32_t mag =
      abs_bits == kF32InfBits ? kE4M3.max_finite + 1 : round_magnitude(abs_bits, kE4M3);
  // Overflow after rounding: 448 = 1.110b * 2^8 is the largest finite; the would-be
  // 480 (1.111b * 2^8) is the NaN code, so (464, 480) round to 0x7F and overflow too.
  // 464 itself is the tie 448|480 and goes to the even mantissa, 448.
  if (mag > kE4M3.max_finite) return sign | (saturate ? kE4M3.max_finite : kNaN);
  return static_cast<std::uint8_t>(sign | mag);
}

float e4m3_to_f32(std::uint8_t bits) { return e4m3_table()[bits]; }

std::uint8_t f32_to_e5m2(float x, bool saturate) {
  const std::uint32_t bits = std::bit_cast<std::uint32_t>(x);
  const auto sign = static_cast<std::uint8_t>((bits & kF32SignMask) >> 24);
  const std::uint32_t abs_bits = bits & kF32AbsMask;
  constexpr std::uint8_t kNaN = 0x7F;
  constexpr std::uint8_t kInf = 0x7C;
  if (abs_bits > kF32InfBits) return kNaN;  // positive canonical NaN, as CUDA
  const std::uint32_t mag =
      abs_bits == kF32InfBits ? std::uint32_t{kInf} : round_magnitude(abs_bits, kE5M2);
  // 57344 = 1.11b * 2^15 is the largest finite; 61440 is the tie with 2^16 (even
  // mantissa) and overflows, like every value above it.
  if (mag > kE5M2.max_finite) return sign | (saturate ? kE5M2.max_finite : kInf);
  return static_cast<std::uint8_t>(sign | mag);
}

float e5m2_to_f32(std::uint8_t bits) { return e5m2_table()[bits]; }

std::uint8_t f32_to_fp8(float x, DType format, bool saturate) {
  switch (format) {
    case DType::E4M3: return f32_to_e4m3(x, saturate);
    case DType::E5M2: return f32_to_e5m2(x, saturate);
    default: break;
  }
  CRUCIBLE_FAIL("f32_to_fp8: ", dtype_name(format), " is not an FP8 format (e4m3 or e5m2)");
}

float fp8_to_f32(std::uint8_t bits, DType format) {
  switch (format) {
    case DType::E4M3: return e4m3_to_f32(bits);
    case DType::E5M2: return e5m2_to_f32(bits);
    default: break;
  }
  CRUCIBLE_FAIL("fp8_to_f32: ", dtype_name(format), " is not an FP8 format (e4m3 or e5m2)");
}

float fp8_max(DType format) {
  switch (format) {
    case DType::E4M3: return kE4M3Max;
    case DType::E5M2: return kE5M2Max;
    default: break;
  }
  CRUCIBLE_FAIL("fp8_max: ", dtype_name(format), " is not an FP8 format (e4m3 or e5m2)");
}

float round_to(float x, DType t) {
  switch (t) {
    case DType::F64:  // every float32 is a double
    case DType::F32: return x;
    case DType::BF16: return bf16_to_f32(f32_to_bf16(x));
    case DType::F16: return f16_to_f32(f32_to_f16(x));
    // FP8 with the default (saturating) encode, as the quantizers use it.
    case DType::E4M3: return e4m3_to_f32(f32_to_e4m3(x));
    case DType::E5M2: return e5m2_to_f32(f32_to_e5m2(x));
    default: break;
  }
  CRUCIBLE_FAIL("round_to: ", dtype_name(t), " is not a floating-point dtype");
}

}  // namespace crucible
