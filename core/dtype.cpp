// core/dtype.cpp: names of element types and devices.
#include "core/dtype.h"

#include <charconv>

namespace crucible {

std::optional<DType> parse_dtype(std::string_view name) {
  for (DType t : {DType::F64, DType::F32, DType::BF16, DType::F16, DType::E4M3, DType::E5M2,
                  DType::I64, DType::I32, DType::U8}) {
    if (dtype_name(t) == name) return t;
  }
  if (name == "fp32" || name == "float32") return DType::F32;
  if (name == "bfloat16") return DType::BF16;
  if (name == "fp16" || name == "float16") return DType::F16;
  if (name == "fp8_e4m3" || name == "float8_e4m3fn") return DType::E4M3;
  if (name == "fp8_e5m2" || name == "float8_e5m2") return DType::E5M2;
  return std::nullopt;
}

std::string Device::str() const {
  return is_cpu() ? std::string("cpu") : "cuda:" + std::to_string(index);
}

std::optional<Device> parse_device(std::string_view name) {
  if (name == "cpu") return Device::cpu();
  if (name == "cuda") return Device::cuda(0);
  if (name.starts_with("cuda:")) {
    int index = -1;
    auto digits = name.substr(5);
    auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), index);
    if (ec == std::errc() && p == digits.data() + digits.size() && index >= 0)
      return Device::cuda(index);
  }
  return std::nullopt;
}

bool cuda_compiled() {
#ifdef CRUCIBLE_WITH_CUDA
  return true;
#else
  return false;
#endif
}

}  // namespace crucible
