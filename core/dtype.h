// core/dtype.h: element types and devices.
//
// DType enumerates every element type a crucible tensor can hold. The numeric
// codecs for the narrow floats (BF16, FP16, FP8 E4M3/E5M2) are in core/numerics.h;
// this header only names the types and their sizes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace crucible {

enum class DType : std::uint8_t { F64, F32, BF16, F16, E4M3, E5M2, I64, I32, U8 };

constexpr std::size_t dtype_size(DType t) {
  switch (t) {
    case DType::F64: case DType::I64: return 8;
    case DType::F32: case DType::I32: return 4;
    case DType::BF16: case DType::F16: return 2;
    case DType::E4M3: case DType::E5M2: case DType::U8: return 1;
  }
  return 0;
}

constexpr std::string_view dtype_name(DType t) {
  switch (t) {
    case DType::F64: return "f64";
    case DType::F32: return "f32";
    case DType::BF16: return "bf16";
    case DType::F16: return "f16";
    case DType::E4M3: return "e4m3";
    case DType::E5M2: return "e5m2";
    case DType::I64: return "i64";
    case DType::I32: return "i32";
    case DType::U8: return "u8";
  }
  return "?";
}

constexpr bool dtype_is_float(DType t) {
  return t != DType::I64 && t != DType::I32 && t != DType::U8;
}

std::optional<DType> parse_dtype(std::string_view name);

enum class DeviceKind : std::uint8_t { Cpu, Cuda };

struct Device {
  DeviceKind kind = DeviceKind::Cpu;
  int index = 0;  // CUDA ordinal; 0 on the CPU

  static constexpr Device cpu() { return {DeviceKind::Cpu, 0}; }
  static constexpr Device cuda(int i = 0) { return {DeviceKind::Cuda, i}; }
  constexpr bool is_cpu() const { return kind == DeviceKind::Cpu; }
  constexpr bool is_cuda() const { return kind == DeviceKind::Cuda; }
  friend constexpr bool operator==(Device, Device) = default;
  std::string str() const;  // "cpu", "cuda:0"
};

// Parses "cpu", "cuda", "cuda:N".
std::optional<Device> parse_device(std::string_view name);

// True when this binary was built with the CUDA backend (it may still find no GPU).
bool cuda_compiled();

}  // namespace crucible
