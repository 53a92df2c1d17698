// core/numerics.h: exact codecs for the narrow float formats.
//
// BF16 and FP16 (IEEE binary16) and the OCP 8-bit floats (OCP "8-bit Floating
// Point Specification (OFP8)" rev 1.0): E4M3 (bias 7, no infinities, S.1111.111 is
// NaN, max normal 448) and E5M2 (bias 15, IEEE-like with infinities and NaNs, max
// normal 57344). Encoding from float32 rounds to nearest, ties to even, keeps
// subnormals, and keeps NaN a NaN.
//
// Overflow behaviour matches CUDA's cvt with .satfinite (cuda_fp8.h __NV_SATFINITE),
// so that the CPU twin and the CUDA kernels agree bit for bit:
//   saturate = true : |x| beyond the max normal (after rounding), including +-inf,
//                     becomes +-max normal; NaN -> NaN.
//   saturate = false: E4M3 -> NaN on overflow or inf; E5M2 -> +-inf.
// A NaN input encodes to 0x7F in both FP8 formats whatever its sign (as CUDA's
// conversions do); to 0x7FC0 in BF16 and 0x7E00 in FP16, with the sign kept.
#pragma once

#include <cstdint>

#include "core/dtype.h"

namespace crucible {

inline constexpr float kE4M3Max = 448.0f;
inline constexpr float kE5M2Max = 57344.0f;

std::uint16_t f32_to_bf16(float x);
float bf16_to_f32(std::uint16_t bits);
std::uint16_t f32_to_f16(float x);
float f16_to_f32(std::uint16_t bits);

std::uint8_t f32_to_e4m3(float x, bool saturate = true);
float e4m3_to_f32(std::uint8_t bits);
std::uint8_t f32_to_e5m2(float x, bool saturate = true);
float e5m2_to_f32(std::uint8_t bits);

// Dispatch on the 8-bit format (DType::E4M3 or DType::E5M2).
std::uint8_t f32_to_fp8(float x, DType format, bool saturate = true);
float fp8_to_f32(std::uint8_t bits, DType format);
float fp8_max(DType format);

// Rounds x to the nearest value representable in `t` (F32 returns x).
float round_to(float x, DType t);

}  // namespace crucible
