// core/tensor.h: Storage, Shape and Tensor.
//
// A Tensor is shared storage + byte offset + shape + dtype (+ the storage's
// device) + a stable debug name. Tensors are row-major and contiguous; views
// (slices of leading dims, reshapes) share storage and cost nothing. Host access
// to elements is for tests, I/O and the CPU kernels only: data<T>() checks that
// the tensor lives on the CPU and that T matches the dtype.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <type_traits>

#include "core/device_memory.h"
#include "core/dtype.h"
#include "core/error.h"

namespace crucible {

// Raw bytes on one device. CPU storage is 64-byte aligned and zero-initialized.
class Storage {
 public:
  Storage(Device device, std::size_t bytes, Init init = Init::Zero);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  Device device() const { return device_; }
  std::size_t bytes() const { return bytes_; }
  void* data() { return data_; }
  const void* data() const { return data_; }

 private:
  Device device_;
  std::size_t bytes_ = 0;
  void* data_ = nullptr;
};

// Up to kMaxDims dims, each >= 0.
class Shape {
 public:
  static constexpr int kMaxDims = 8;

  Shape() = default;
  Shape(std::initializer_list<std::int64_t> dims);
  template <typename It>
  Shape(It first, It last) {
    for (; first != last; ++first) push_back(static_cast<std::int64_t>(*first));
  }

  int rank() const { return rank_; }
  std::int64_t operator[](int i) const;
  std::int64_t& operator[](int i);
  std::int64_t numel() const;
  void push_back(std::int64_t d);
  const std::int64_t* begin() const { return dims_.data(); }
  const std::int64_t* end() const { return dims_.data() + rank_; }
  std::string str() const;  // "[2, 3, 4]"
  friend bool operator==(const Shape& a, const Shape& b);

 private:
  std::array<std::int64_t, kMaxDims> dims_{};
  int rank_ = 0;
};

// Maps C++ element types to DType for checked host access.
template <typename T> struct DTypeOf;
template <> struct DTypeOf<double> { static constexpr DType value = DType::F64; };
template <> struct DTypeOf<float> { static constexpr DType value = DType::F32; };
template <> struct DTypeOf<std::int64_t> { static constexpr DType value = DType::I64; };
template <> struct DTypeOf<std::int32_t> { static constexpr DType value = DType::I32; };
template <> struct DTypeOf<std::uint8_t> { static constexpr DType value = DType::U8; };

class Tensor {
 public:
  Tensor() = default;
  // Allocates fresh zeroed storage.
  Tensor(Shape shape, DType dtype, Device device = Device::cpu(), std::string name = {});
  // Allocates fresh storage (init: see core/device_memory.h).
  Tensor(Shape shape, DType dtype, Device device, std::string name, Init init);
  // A view into existing storage at a byte offset.
  Tensor(std::shared_ptr<Storage> storage, std::size_t byte_offset, Shape shape, DType dtype,
         std::string name = {});

  // Fresh storage whose contents are unspecified (not zeroed on a GPU): for outputs that
  // the next op overwrites whole. CRUCIBLE_POISON_EMPTY=1 fills it with NaN bytes.
  static Tensor empty(Shape shape, DType dtype, Device device = Device::cpu(), std::string name = {}) {
    return Tensor(shape, dtype, device, std::move(name), Init::Unspecified);
  }

  bool defined() const { return storage_ != nullptr; }
  const Shape& shape() const { return shape_; }
  std::int64_t dim(int i) const { return shape_[i < 0 ? i + shape_.rank() : i]; }
  int rank() const { return shape_.rank(); }
  std::int64_t numel() const { return shape_.numel(); }
  DType dtype() const { return dtype_; }
  std::size_t nbytes() const { return static_cast<std::size_t>(numel()) * dtype_size(dtype_); }
  Device device() const;
  std::size_t byte_offset() const { return offset_; }
  const std::shared_ptr<Storage>& storage() const { return storage_; }
  const std::string& name() const { return name_; }
  Tensor& set_name(std::string name) {
    name_ = std::move(name);
    return *this;
  }

  void* raw() const;  // device pointer to the first element (any device)

  // Checked host access: CPU tensor, T's dtype (or a 1- or 2-byte raw type for
  // the narrow floats: std::uint16_t for bf16/f16, std::uint8_t for fp8).
  template <typename T>
  T* data() const {
    check_host_access(sizeof(T), host_type_matches<T>());
    return static_cast<T*>(raw());
  }
  template <typename T>
  std::span<T> span() const {
    return {data<T>(), static_cast<std::size_t>(numel())};
  }

  // Views.
  Tensor slice(std::int64_t begin, std::int64_t end) const;  // rows [begin, end) of dim 0
  Tensor row(std::int64_t i) const;                          // dim 0 index i, rank - 1
  Tensor reshape(Shape shape) const;                         // same numel
  Tensor view_as(DType dtype, Shape shape) const;            // reinterpret bytes; same nbytes

  // Copies (any device to any device, same dtype and numel).
  Tensor to(Device device) const;
  Tensor clone() const;
  void copy_from(const Tensor& src);
  void zero();

 private:
  template <typename T>
  bool host_type_matches() const {
    if constexpr (std::is_same_v<T, std::uint16_t>)
      return dtype_ == DType::BF16 || dtype_ == DType::F16;
    else if constexpr (std::is_same_v<T, std::uint8_t>)
      return dtype_ == DType::U8 || dtype_ == DType::E4M3 || dtype_ == DType::E5M2;
    else
      return DTypeOf<std::remove_const_t<T>>::value == dtype_;
  }
  void check_host_access(std::size_t elem_size, bool type_ok) const;

  std::shared_ptr<Storage> storage_;
  std::size_t offset_ = 0;
  Shape shape_;
  DType dtype_ = DType::F32;
  std::string name_;
};

// The tensor itself when it already lives on `device`, else a synchronous copy there:
// for small tensors moved between the host and the model's device (index tensors,
// per-token loss gradients, routing decisions, results in tests).
inline Tensor on_device(const Tensor& t, Device device) { return t.device() == device ? t : t.to(device); }
inline Tensor on_host(const Tensor& t) { return on_device(t, Device::cpu()); }

// Copies nbytes between pointers on the given devices (CUDA copies are synchronous).
void copy_bytes(void* dst, Device dst_dev, const void* src, Device src_dev, std::size_t nbytes);

}  // namespace crucible
