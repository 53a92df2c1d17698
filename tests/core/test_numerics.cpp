// tests/core/test_numerics.cpp: the narrow-float codecs of core/numerics.h.
//
// Every code of E4M3, E5M2, BF16 and FP16 is decoded and checked against a decoder
// written here from the bit fields (std::ldexp, in double), then encoded back. Rounding
// is checked at every midpoint between adjacent values (ties to even, one float ulp
// either side) and against a brute-force nearest-value search, which would catch a
// double rounding. Reference: OCP OFP8 spec rev 1.0; IEEE 754-2019 §4.3.
#include "core/numerics.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "core/error.h"
#include "tests/catch.h"
#include "tests/worst.h"

namespace {

using namespace crucible;

constexpr float kInf = std::numeric_limits<float>::infinity();

// A format as the reference sees it: field widths, bias, and the E4M3 quirk.
struct RefFormat {
  int exp_bits;
  int mant_bits;
  int bias;
  bool ieee_specials;  // all-ones exponent = inf/NaN (false: only S.1111.111 is NaN)
  // The value one step above the largest finite (the first overflowing value when the
  // exponent range is unbounded above) and whether that step has an even mantissa.
  double overflow_value;
  bool overflow_even;
};

constexpr RefFormat kRefE4M3{4, 3, 7, false, 480.0, false};  // 1.111b * 2^8, odd
constexpr RefFormat kRefE5M2{5, 2, 15, true, 65536.0, true};  // 1.00b * 2^16, even
constexpr RefFormat kRefBF16{8, 7, 127, true, 0x1p128, true};
constexpr RefFormat kRefF16{5, 10, 15, true, 65536.0, true};

int code_bits(const RefFormat& f) { return 1 + f.exp_bits + f.mant_bits; }

// Decodes a code from its fields: sign, exponent, mantissa. NaN for NaN codes.
double ref_decode(std::uint32_t code, const RefFormat& f) {
  const int n = code_bits(f);
  const bool negative = (code >> (n - 1)) & 1u;
  const std::uint32_t exp = (code >> f.mant_bits) & ((1u << f.exp_bits) - 1u);
  const std::uint32_t mant = code & ((1u << f.mant_bits) - 1u);
  const std::uint32_t exp_all_ones = (1u << f.exp_bits) - 1u;
  const std::uint32_t mant_all_ones = (1u << f.mant_bits) - 1u;
  double v;
  if (f.ieee_specials && exp == exp_all_ones) {
    v = mant == 0 ? std::numeric_limits<double>::infinity()
                  : std::numeric_limits<double>::quiet_NaN();
  } else if (!f.ieee_specials && exp == exp_all_ones && mant == mant_all_ones) {
    v = std::numeric_limits<double>::quiet_NaN();
  } else if (exp == 0) {
    v = std::ldexp(static_cast<double>(mant), 1 - f.bias - f.mant_bits);
  } else {
    v = std::ldexp(static_cast<double>(mant + (1u << f.mant_bits)),
                   static_cast<int>(exp) - f.bias - f.mant_bits);
  }
  return negative ? -v : v;
}

// Non-negative finite values of a format in increasing order with their codes.
struct Ladder {
  std::vector<double> value;
  std::vector<std::uint32_t> code;
};

Ladder positive_ladder(const RefFormat& f) {
  Ladder l;
  const std::uint32_t half = 1u << (code_bits(f) - 1);
  for (std::uint32_t c = 0; c < half; ++c) {
    const double v = ref_decode(c, f);
    if (std::isfinite(v)) {
      l.value.push_back(v);
      l.code.push_back(c);
    }
  }
  // Positive codes increase with the value: the ladder is sorted by construction.
  REQUIRE(std::is_sorted(l.value.begin(), l.value.end()));
  return l;
}

// Brute-force round-to-nearest-even of a float into f: the nearest ladder value (or
// the overflow step above the largest), ties to the even code. Returns the magnitude
// code and sets `overflow` when the overflow step wins.
std::uint32_t ref_round(float x, const RefFormat& f, const Ladder& l, bool& overflow) {
  const double a = std::fabs(static_cast<double>(x));
  overflow = false;
  if (a >= f.overflow_value) {
    overflow = true;
    return 0;
  }
  // First value >= a; the answer is it or the one below (or the overflow step).
  auto it = std::lower_bound(l.value.begin(), l.value.end(), a);
  if (it == l.value.end()) {
    const double lo = l.value.back();
    const double d_lo = a - lo, d_hi = f.overflow_value - a;
    if (d_hi < d_lo || (d_hi == d_lo && f.overflow_even)) overflow = true;
    return l.code.back();
  }
  const std::size_t i = static_cast<std::size_t>(it - l.value.begin());
  if (*it == a || i == 0) return l.code[i];
  const double d_lo = a - l.value[i - 1], d_hi = l.value[i] - a;
  if (d_lo < d_hi) return l.code[i - 1];
  if (d_hi < d_lo) return l.code[i];
  return (l.code[i] & 1u) == 0 ? l.code[i] : l.code[i - 1];
}

bool same_bits(float a, float b) {
  return std::bit_cast<std::uint32_t>(a) == std::bit_cast<std::uint32_t>(b);
}

float next_up(float x) { return std::nextafter(x, kInf); }
float next_down(float x) { return std::nextafter(x, -kInf); }

// Random float32 bit patterns (all exponents) mixed with values spread log-uniformly
// over [2^lo_exp, 2^hi_exp], where a format's interesting roundings happen.
std::vector<float> random_floats(int lo_exp, int hi_exp, std::size_t n, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> expo(static_cast<float>(lo_exp),
                                             static_cast<float>(hi_exp));
  std::vector<float> xs;
  for (std::size_t i = 0; i < n; ++i) {
    if (i % 4 == 0) {
      xs.push_back(std::bit_cast<float>(static_cast<std::uint32_t>(rng())));
    } else {
      const float mag = std::exp2(expo(rng));
      xs.push_back(rng() & 1u ? -mag : mag);
    }
  }
  return xs;
}

// Encode/decode through the header's API for one FP8 format.
struct Fp8Api {
  DType type;
  const RefFormat& ref;
  std::uint8_t max_code;
  std::uint8_t overflow_code;  // non-saturating result of an overflow (NaN or inf)
};
const Fp8Api kApiE4M3{DType::E4M3, kRefE4M3, 0x7E, 0x7F};
const Fp8Api kApiE5M2{DType::E5M2, kRefE5M2, 0x7B, 0x7C};

TEST_CASE("fp8 decode matches the bit-field reference for all 256 codes", "[numerics]") {
  for (const Fp8Api* api : {&kApiE4M3, &kApiE5M2}) {
    INFO("format " << dtype_name(api->type));
    int nan_codes = 0, inf_codes = 0;
    for (std::uint32_t c = 0; c < 256; ++c) {
      INFO("code 0x" << std::hex << c);
      const double want = ref_decode(c, api->ref);
      const float got = fp8_to_f32(static_cast<std::uint8_t>(c), api->type);
      const float direct = api->type == DType::E4M3 ? e4m3_to_f32(static_cast<std::uint8_t>(c))
                                                    : e5m2_to_f32(static_cast<std::uint8_t>(c));
      REQUIRE(same_bits(got, direct));
      if (std::isnan(want)) {
        ++nan_codes;
        CHECK(std::isnan(got));
        continue;
      }
      if (std::isinf(want)) ++inf_codes;
      CHECK(static_cast<double>(got) == want);
      CHECK(std::signbit(got) == ((c & 0x80u) != 0));  // -0 included
    }
    // E4M3: only S.1111.111 is NaN, no inf. E5M2: S.11111.{01,10,11} NaN, S.11111.00 inf.
    CHECK(nan_codes == (api->type == DType::E4M3 ? 2 : 6));
    CHECK(inf_codes == (api->type == DType::E4M3 ? 0 : 2));
  }
  // Spot values from the OCP spec tables.
  CHECK(e4m3_to_f32(0x7E) == 448.0f);
  CHECK(e4m3_to_f32(0x08) == 0x1p-6f);  // smallest normal
  CHECK(e4m3_to_f32(0x01) == 0x1p-9f);  // smallest subnormal
  CHECK(e4m3_to_f32(0x38) == 1.0f);
  CHECK(e5m2_to_f32(0x7B) == 57344.0f);
  CHECK(e5m2_to_f32(0x01) == 0x1p-16f);
  CHECK(e5m2_to_f32(0x3C) == 1.0f);
  CHECK(e5m2_to_f32(0xFC) == -kInf);
  CHECK(fp8_max(DType::E4M3) == 448.0f);
  CHECK(fp8_max(DType::E5M2) == 57344.0f);
}

TEST_CASE("fp8 encode of every decoded code gives the code back", "[numerics]") {
  for (const Fp8Api* api : {&kApiE4M3, &kApiE5M2}) {
    INFO("format " << dtype_name(api->type));
    for (std::uint32_t c = 0; c < 256; ++c) {
      INFO("code 0x" << std::hex << c);
      const auto code = static_cast<std::uint8_t>(c);
      const float v = fp8_to_f32(code, api->type);
      if (std::isnan(v)) {
        // NaN decodes to NaN and encodes to the positive canonical NaN (as CUDA).
        const std::uint8_t nan = 0x7Fu;
        CHECK(f32_to_fp8(v, api->type, true) == nan);
        CHECK(f32_to_fp8(v, api->type, false) == nan);
        continue;
      }
      if (std::isinf(v)) {  // E5M2 inf: kept without saturation, max finite with it
        CHECK(f32_to_fp8(v, api->type, false) == code);
        CHECK(f32_to_fp8(v, api->type, true) == ((c & 0x80u) | api->max_code));
        continue;
      }
      CHECK(f32_to_fp8(v, api->type, true) == code);
      CHECK(f32_to_fp8(v, api->type, false) == code);
    }
  }
  CHECK(f32_to_e4m3(-0.0f) == 0x80);
  CHECK(f32_to_e5m2(-0.0f) == 0x80);
  CHECK(f32_to_e4m3(0.0f) == 0x00);
}

TEST_CASE("fp8 NaN inputs of any payload and sign encode to the canonical NaN", "[numerics]") {
  const float nans[] = {std::numeric_limits<float>::quiet_NaN(),
                        std::bit_cast<float>(0x7F800001u),   // signalling, payload 1
                        std::bit_cast<float>(0x7FBFFFFFu)};  // signalling, full payload
  for (float n : nans) {
    for (bool sat : {true, false}) {
      CHECK(f32_to_e4m3(n, sat) == 0x7F);
      CHECK(f32_to_e4m3(-n, sat) == 0x7F);
      CHECK(f32_to_e5m2(n, sat) == 0x7F);
      CHECK(f32_to_e5m2(-n, sat) == 0x7F);
    }
    CHECK(f32_to_bf16(n) == 0x7FC0);
    CHECK(f32_to_bf16(-n) == 0xFFC0);
    CHECK(std::isnan(f16_to_f32(f32_to_f16(n))));
    CHECK((f32_to_f16(-n) & 0x8000u) != 0);
    CHECK(std::isnan(round_to(n, DType::E4M3)));
    CHECK(std::isnan(round_to(n, DType::BF16)));
  }
}

// All 65536 codes of a 16-bit format: decode against the reference, encode back.
template <typename Encode, typename Decode>
void check_all_16bit_codes(const RefFormat& f, Encode encode, Decode decode, std::uint16_t nan) {
  int nans = 0, mismatches = 0;
  for (std::uint32_t c = 0; c < 65536; ++c) {
    const auto code = static_cast<std::uint16_t>(c);
    const double want = ref_decode(c, f);
    const float got = decode(code);
    const std::uint16_t sign = code & 0x8000u;
    if (std::isnan(want)) {
      ++nans;
      if (!std::isnan(got) || encode(got) != (sign | nan)) ++mismatches;
      continue;
    }
    const bool ok = static_cast<double>(got) == want && std::signbit(got) == (sign != 0) &&
                    encode(got) == code;
    if (!ok) {
      ++mismatches;
      UNSCOPED_INFO("code 0x" << std::hex << c << ": got " << got << ", want " << want
                              << ", re-encoded 0x" << encode(got));
    }
  }
  // (2^M - 1) NaN mantissas per sign.
  CHECK(nans == 2 * ((1 << f.mant_bits) - 1));
  CHECK(mismatches == 0);
}

TEST_CASE("bf16 and fp16: all 65536 codes both ways", "[numerics]") {
  check_all_16bit_codes(kRefBF16, f32_to_bf16, bf16_to_f32, 0x7FC0);
  check_all_16bit_codes(kRefF16, f32_to_f16, f16_to_f32, 0x7E00);
  CHECK(bf16_to_f32(0x3F80) == 1.0f);
  CHECK(f16_to_f32(0x3C00) == 1.0f);
  CHECK(f16_to_f32(0x7BFF) == 65504.0f);
  CHECK(f16_to_f32(0x0001) == 0x1p-24f);
}

// Every midpoint between adjacent finite values (and the negatives) rounds to the
// even code; one float ulp below goes down, one above goes up.
template <typename Encode>
void check_midpoints(const RefFormat& f, Encode encode) {
  const Ladder l = positive_ladder(f);
  const std::uint32_t sign = 1u << (code_bits(f) - 1);
  int checked = 0, failures = 0;
  for (std::size_t i = 0; i + 1 < l.value.size(); ++i) {
    const double mid = 0.5 * (l.value[i] + l.value[i + 1]);
    const auto mid_f = static_cast<float>(mid);
    REQUIRE(static_cast<double>(mid_f) == mid);  // exactly representable in float32
    const std::uint32_t lo = l.code[i], hi = l.code[i + 1];
    const std::uint32_t even = (lo & 1u) == 0 ? lo : hi;
    REQUIRE(((lo ^ hi) & 1u) == 1u);  // adjacent codes differ in parity
    for (bool negative : {false, true}) {
      const float s = negative ? -1.0f : 1.0f;
      const std::uint32_t sb = negative ? sign : 0u;
      const std::uint32_t got_mid = encode(s * mid_f);
      const std::uint32_t got_below = encode(s * next_down(mid_f));
      const std::uint32_t got_above = encode(s * next_up(mid_f));
      if (got_mid != (sb | even) || got_below != (sb | lo) || got_above != (sb | hi)) {
        ++failures;
        UNSCOPED_INFO("midpoint " << s * mid_f << " between codes 0x" << std::hex << lo << " and 0x"
                                  << hi << ": got 0x" << got_below << ", 0x" << got_mid << ", 0x"
                                  << got_above);
      }
      ++checked;
    }
  }
  CHECK(checked > 0);
  CHECK(failures == 0);
}

TEST_CASE("ties round to even at every midpoint of adjacent values", "[numerics]") {
  for (bool sat : {true, false}) {
    check_midpoints(kRefE4M3, [sat](float x) -> std::uint32_t { return f32_to_e4m3(x, sat); });
    check_midpoints(kRefE5M2, [sat](float x) -> std::uint32_t { return f32_to_e5m2(x, sat); });
  }
  check_midpoints(kRefF16, [](float x) -> std::uint32_t { return f32_to_f16(x); });
  check_midpoints(kRefBF16, [](float x) -> std::uint32_t { return f32_to_bf16(x); });

  // The first E4M3 tie (0 | smallest subnormal) goes to zero; next float up does not.
  CHECK(f32_to_e4m3(0x1p-10f) == 0x00);
  CHECK(f32_to_e4m3(next_up(0x1p-10f)) == 0x01);
  // 1 + 1/16 is the tie 1 | 1.125 -> 1 (even); any bit above must not be lost to an
  // intermediate rounding: 1 + 1/16 + 2^-20 is nearer to 1.125.
  CHECK(f32_to_e4m3(1.0625f) == 0x38);
  CHECK(f32_to_e4m3(1.0625f + 0x1p-20f) == 0x39);
  CHECK(f32_to_e5m2(1.125f) == 0x3C);
  CHECK(f32_to_e5m2(1.125f + 0x1p-20f) == 0x3D);
  CHECK(f32_to_bf16(1.0f + 0x1p-8f) == 0x3F80);
  CHECK(f32_to_bf16(1.0f + 0x1p-8f + 0x1p-23f) == 0x3F81);
}

TEST_CASE("e4m3 saturation and overflow", "[numerics]") {
  struct Case {
    float x;
    std::uint8_t sat, nosat;
  };
  const Case cases[] = {
      {448.0f, 0x7E, 0x7E},
      {449.0f, 0x7E, 0x7E},
      {463.99f, 0x7E, 0x7E},
      // 464 is the tie between 448 (1.110b) and the would-be 480 (1.111b, the NaN
      // code): ties to even keep 448 (as CUDA's cuda_fp8.hpp does). One float above
      // 464 overflows.
      {464.0f, 0x7E, 0x7E},
      {next_up(464.0f), 0x7E, 0x7F},
      {480.0f, 0x7E, 0x7F},
      {512.0f, 0x7E, 0x7F},
      {1e6f, 0x7E, 0x7F},
      {std::numeric_limits<float>::max(), 0x7E, 0x7F},
      {kInf, 0x7E, 0x7F},
      {-448.0f, 0xFE, 0xFE},
      {-464.0f, 0xFE, 0xFE},
      {-1e6f, 0xFE, 0xFF},
      {-kInf, 0xFE, 0xFF},
      {std::numeric_limits<float>::quiet_NaN(), 0x7F, 0x7F},
  };
  for (const Case& c : cases) {
    INFO("x = " << c.x);
    CHECK(f32_to_e4m3(c.x, true) == c.sat);
    CHECK(f32_to_e4m3(c.x, false) == c.nosat);
    CHECK(f32_to_e4m3(c.x) == c.sat);  // saturating by default
  }
  CHECK(round_to(1e6f, DType::E4M3) == 448.0f);
  CHECK(round_to(-kInf, DType::E4M3) == -448.0f);
}

TEST_CASE("e5m2 saturation and overflow", "[numerics]") {
  struct Case {
    float x;
    std::uint8_t sat, nosat;
  };
  const Case cases[] = {
      {57344.0f, 0x7B, 0x7B},
      {60000.0f, 0x7B, 0x7B},
      {next_down(61440.0f), 0x7B, 0x7B},
      // 61440 is the tie between 57344 (1.11b) and 2^16 (even): it overflows.
      {61440.0f, 0x7B, 0x7C},
      {65536.0f, 0x7B, 0x7C},
      {1e6f, 0x7B, 0x7C},
      {kInf, 0x7B, 0x7C},
      {-61440.0f, 0xFB, 0xFC},
      {-kInf, 0xFB, 0xFC},
      {std::numeric_limits<float>::quiet_NaN(), 0x7F, 0x7F},
  };
  for (const Case& c : cases) {
    INFO("x = " << c.x);
    CHECK(f32_to_e5m2(c.x, true) == c.sat);
    CHECK(f32_to_e5m2(c.x, false) == c.nosat);
  }
  CHECK(e5m2_to_f32(f32_to_e5m2(kInf, false)) == kInf);
}

TEST_CASE("bf16 and fp16 overflow to infinity", "[numerics]") {
  CHECK(f32_to_f16(65504.0f) == 0x7BFF);
  CHECK(f32_to_f16(next_down(65520.0f)) == 0x7BFF);
  CHECK(f32_to_f16(65520.0f) == 0x7C00);  // tie with 2^16 (even) overflows
  CHECK(f32_to_f16(-1e6f) == 0xFC00);
  CHECK(f32_to_f16(kInf) == 0x7C00);
  const float bf16_max = bf16_to_f32(0x7F7F);
  CHECK(f32_to_bf16(bf16_max) == 0x7F7F);
  // FLT_MAX is above the tie 0x1.FEp127 + 2^119 between bf16 max and 2^128: inf.
  CHECK(f32_to_bf16(std::numeric_limits<float>::max()) == 0x7F80);
  CHECK(f32_to_bf16(-kInf) == 0xFF80);
  CHECK(round_to(1e6f, DType::F16) == kInf);
  CHECK(round_to(0.1f, DType::F32) == 0.1f);
}

TEST_CASE("subnormals and underflow to signed zero", "[numerics]") {
  // E4M3: smallest subnormal 2^-9, smallest normal 2^-6.
  CHECK(f32_to_e4m3(0x1p-9f) == 0x01);
  CHECK(f32_to_e4m3(-0x1p-9f) == 0x81);
  CHECK(f32_to_e4m3(0x1p-6f) == 0x08);
  CHECK(f32_to_e4m3(0x7p-9f) == 0x07);  // largest subnormal
  CHECK(f32_to_e4m3(0x7.8p-9f) == 0x08);  // tie 7|8 subnormal steps -> the smallest normal (even)
  CHECK(f32_to_e4m3(0x1.8p-9f) == 0x02);  // tie 1|2 -> 2 (even)
  CHECK(f32_to_e4m3(0x2.8p-9f) == 0x02);  // tie 2|3 -> 2 (even)
  CHECK(f32_to_e4m3(0x1p-11f) == 0x00);  // below half the smallest subnormal
  CHECK(f32_to_e4m3(-0x1p-11f) == 0x80);
  CHECK(f32_to_e4m3(-0x1p-10f) == 0x80);  // exactly half: tie to even (zero)
  CHECK(f32_to_e4m3(std::numeric_limits<float>::denorm_min()) == 0x00);
  CHECK(f32_to_e4m3(-std::numeric_limits<float>::denorm_min()) == 0x80);
  // E5M2: smallest subnormal 2^-16.
  CHECK(f32_to_e5m2(0x1p-16f) == 0x01);
  CHECK(f32_to_e5m2(0x1p-17f) == 0x00);
  CHECK(f32_to_e5m2(next_up(0x1p-17f)) == 0x01);
  CHECK(f32_to_e5m2(-0x1p-18f) == 0x80);
  CHECK(f32_to_e5m2(0x3p-16f) == 0x03);
  CHECK(f32_to_e5m2(0x1p-14f) == 0x04);
  // FP16: smallest subnormal 2^-24.
  CHECK(f32_to_f16(0x1p-24f) == 0x0001);
  CHECK(f32_to_f16(0x1p-25f) == 0x0000);
  CHECK(f32_to_f16(-0x1.000002p-25f) == 0x8001);
  CHECK(f32_to_f16(-0x1p-30f) == 0x8000);
  // BF16 from float32 subnormals (same exponent range): mantissa rounding only.
  CHECK(f32_to_bf16(std::bit_cast<float>(0x00000001u)) == 0x0000);
  CHECK(f32_to_bf16(std::bit_cast<float>(0x00008000u)) == 0x0000);  // tie -> even 0
  CHECK(f32_to_bf16(std::bit_cast<float>(0x00018000u)) == 0x0002);  // tie -> even 2
  CHECK(f32_to_bf16(std::bit_cast<float>(0x80010000u)) == 0x8001);
  // The largest float32 subnormal rounds up to the smallest normal.
  CHECK(f32_to_bf16(std::bit_cast<float>(0x007FFFFFu)) == 0x0080);
}

TEST_CASE("encoders agree with a brute-force nearest-value search", "[numerics]") {
  struct Target {
    const RefFormat& f;
    int lo_exp, hi_exp;  // log2 range where the format's values live
  };
  const Ladder e4m3 = positive_ladder(kRefE4M3), e5m2 = positive_ladder(kRefE5M2);
  const Ladder f16 = positive_ladder(kRefF16), bf16 = positive_ladder(kRefBF16);
  int failures = 0;
  const auto check = [&](const char* name, float x, std::uint32_t got, std::uint32_t want) {
    if (got != want) {
      ++failures;
      UNSCOPED_INFO(name << "(" << x << "): got 0x" << std::hex << got << ", want 0x" << want);
    }
  };
  for (float x : random_floats(-12, 10, 20000, 7)) {
    if (std::isnan(x)) continue;
    const std::uint32_t sign8 = std::signbit(x) ? 0x80u : 0u;
    bool overflow = false;
    std::uint32_t mag = ref_round(x, kRefE4M3, e4m3, overflow);
    check("e4m3 sat", x, f32_to_e4m3(x, true), sign8 | (overflow ? 0x7Eu : mag));
    check("e4m3 nosat", x, f32_to_e4m3(x, false), sign8 | (overflow ? 0x7Fu : mag));
  }
  for (float x : random_floats(-20, 17, 20000, 8)) {
    if (std::isnan(x)) continue;
    const std::uint32_t sign8 = std::signbit(x) ? 0x80u : 0u;
    bool overflow = false;
    std::uint32_t mag = ref_round(x, kRefE5M2, e5m2, overflow);
    check("e5m2 sat", x, f32_to_e5m2(x, true), sign8 | (overflow ? 0x7Bu : mag));
    check("e5m2 nosat", x, f32_to_e5m2(x, false), sign8 | (overflow ? 0x7Cu : mag));
  }
  for (float x : random_floats(-26, 17, 20000, 9)) {
    if (std::isnan(x)) continue;
    const std::uint32_t sign16 = std::signbit(x) ? 0x8000u : 0u;
    bool overflow = false;
    std::uint32_t mag = ref_round(x, kRefF16, f16, overflow);
    check("f16", x, f32_to_f16(x), sign16 | (overflow ? 0x7C00u : mag));
  }
  for (float x : random_floats(-140, 128, 20000, 10)) {
    if (std::isnan(x)) continue;
    const std::uint32_t sign16 = std::signbit(x) ? 0x8000u : 0u;
    bool overflow = false;
    std::uint32_t mag = ref_round(x, kRefBF16, bf16, overflow);
    check("bf16", x, f32_to_bf16(x), sign16 | (overflow ? 0x7F80u : mag));
  }
  CHECK(failures == 0);
}

TEST_CASE("dispatch rejects non-fp8 formats", "[numerics]") {
  CHECK(f32_to_fp8(1.0f, DType::E4M3) == 0x38);
  CHECK(f32_to_fp8(1.0f, DType::E5M2) == 0x3C);
  CHECK(fp8_to_f32(0x38, DType::E4M3) == 1.0f);
  CHECK_THROWS_AS(f32_to_fp8(1.0f, DType::BF16), crucible::Error);
  CHECK_THROWS_AS(fp8_to_f32(0x38, DType::U8), crucible::Error);
  CHECK_THROWS_AS(fp8_max(DType::F32), crucible::Error);
  CHECK_THROWS_AS(round_to(1.0f, DType::I32), crucible::Error);
}

}  // namespace

TEST_CASE("tests' worst_of keeps a NaN that std::max would drop", "[numerics]") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  CHECK(std::max(1.0, nan) == 1.0);  // the trap: comparisons with NaN are false
  CHECK(std::isnan(testing::worst_of(1.0, nan)));
  CHECK(std::isnan(testing::worst_of(nan, 2.0)));
  CHECK(testing::worst_of(1.0, 2.0) == 2.0);
  CHECK(testing::worst_of(3.0, 2.0) == 3.0);
}
