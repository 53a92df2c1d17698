// core/tensor.cpp: Storage allocation, shapes, views and copies.
#include "core/tensor.h"

#include <cstdlib>
#include <cstring>

#include "core/device_memory.h"

namespace crucible {

Storage::Storage(Device device, std::size_t bytes, Init init) : device_(device), bytes_(bytes) {
  data_ = device_alloc(device, bytes, init);
}

Storage::~Storage() { device_free(device_, data_); }

Shape::Shape(std::initializer_list<std::int64_t> dims) {
  for (auto d : dims) push_back(d);
}

std::int64_t Shape::operator[](int i) const {
  CRUCIBLE_CHECK(i >= 0 && i < rank_, "dim ", i, " out of range for shape ", str());
  return dims_[i];
}

std::int64_t& Shape::operator[](int i) {
  CRUCIBLE_CHECK(i >= 0 && i < rank_, "dim ", i, " out of range for shape ", str());
  return dims_[i];
}

std::int64_t Shape::numel() const {
  std::int64_t n = 1;
  for (int i = 0; i < rank_; ++i) n *= dims_[i];
  return n;
}

void Shape::push_back(std::int64_t d) {
  CRUCIBLE_CHECK(rank_ < kMaxDims, "more than ", kMaxDims, " dims");
  CRUCIBLE_CHECK(d >= 0, "negative dim ", d);
  dims_[rank_++] = d;
}

std::string Shape::str() const {
  std::string s = "[";
  for (int i = 0; i < rank_; ++i) {
    if (i) s += ", ";
    s += std::to_string(dims_[i]);
  }
  return s + "]";
}

bool operator==(const Shape& a, const Shape& b) {
  if (a.rank_ != b.rank_) return false;
  for (int i = 0; i < a.rank_; ++i)
    if (a.dims_[i] != b.dims_[i]) return false;
  return true;
}

Tensor::Tensor(Shape shape, DType dtype, Device device, std::string name)
    : Tensor(shape, dtype, device, std::move(name), Init::Zero) {}

Tensor::Tensor(Shape shape, DType dtype, Device device, std::string name, Init init)
    : storage_(std::make_shared<Storage>(device, static_cast<std::size_t>(shape.numel()) * dtype_size(dtype),
                                         init)),
      shape_(shape),
      dtype_(dtype),
      name_(std::move(name)) {}

Tensor::Tensor(std::shared_ptr<Storage> storage, std::size_t byte_offset, Shape shape,
               DType dtype, std::string name)
    : storage_(std::move(storage)), offset_(byte_offset), shape_(shape), dtype_(dtype),
      name_(std::move(name)) {
  CRUCIBLE_CHECK(storage_, "view of null storage");
  CRUCIBLE_CHECK(offset_ + nbytes() <= storage_->bytes(), "view ", name_, " ", shape_.str(), " ",
                 dtype_name(dtype_), " at byte ", offset_, " exceeds storage of ",
                 storage_->bytes(), " bytes");
}

Device Tensor::device() const { return storage_ ? storage_->device() : Device::cpu(); }

void* Tensor::raw() const {
  CRUCIBLE_CHECK(storage_, "access to undefined tensor ", name_);
  return static_cast<char*>(storage_->data()) + offset_;
}

void Tensor::check_host_access(std::size_t elem_size, bool type_ok) const {
  CRUCIBLE_CHECK(storage_, "host access to undefined tensor ", name_);
  CRUCIBLE_CHECK(device().is_cpu(), "host access to tensor ", name_, " on ", device().str());
  CRUCIBLE_CHECK(type_ok && elem_size == dtype_size(dtype_), "host access to ", name_,
                 " of dtype ", dtype_name(dtype_), " with an element type of ", elem_size,
                 " bytes");
}

Tensor Tensor::slice(std::int64_t begin, std::int64_t end) const {
  CRUCIBLE_CHECK(rank() >= 1 && 0 <= begin && begin <= end && end <= dim(0), "slice [", begin,
                 ", ", end, ") of ", name_, " ", shape_.str());
  Shape s = shape_;
  s[0] = end - begin;
  std::size_t row_bytes = static_cast<std::size_t>(numel() / std::max<std::int64_t>(dim(0), 1)) *
                          dtype_size(dtype_);
  return Tensor(storage_, offset_ + static_cast<std::size_t>(begin) * row_bytes, s, dtype_, name_);
}

Tensor Tensor::row(std::int64_t i) const {
  Tensor t = slice(i, i + 1);
  Shape s(shape_.begin() + 1, shape_.end());
  t.shape_ = s;
  return t;
}

Tensor Tensor::reshape(Shape shape) const {
  CRUCIBLE_CHECK(shape.numel() == numel(), "reshape of ", name_, " ", shape_.str(), " to ",
                 shape.str());
  Tensor t = *this;
  t.shape_ = shape;
  return t;
}

Tensor Tensor::view_as(DType dtype, Shape shape) const {
  CRUCIBLE_CHECK(static_cast<std::size_t>(shape.numel()) * dtype_size(dtype) == nbytes(),
                 "view of ", name_, " ", shape_.str(), " ", dtype_name(dtype_), " as ",
                 shape.str(), " ", dtype_name(dtype));
  return Tensor(storage_, offset_, shape, dtype, name_);
}

Tensor Tensor::to(Device device) const {
  Tensor t(shape_, dtype_, device, name_, Init::Unspecified);  // copy_from writes every byte
  t.copy_from(*this);
  return t;
}

Tensor Tensor::clone() const { return to(device()); }

void Tensor::copy_from(const Tensor& src) {
  CRUCIBLE_CHECK(src.dtype() == dtype_ && src.numel() == numel(), "copy ", src.name(), " ",
                 src.shape().str(), " ", dtype_name(src.dtype()), " into ", name_, " ",
                 shape_.str(), " ", dtype_name(dtype_));
  copy_bytes(raw(), device(), src.raw(), src.device(), nbytes());
}

void Tensor::zero() { device_memset_zero(device(), raw(), nbytes()); }

void copy_bytes(void* dst, Device dst_dev, const void* src, Device src_dev, std::size_t nbytes) {
  if (nbytes == 0) return;
  if (dst_dev.is_cpu() && src_dev.is_cpu()) {
    std::memcpy(dst, src, nbytes);
    return;
  }
  device_copy(dst, dst_dev, src, src_dev, nbytes);
}

}  // namespace crucible
