// core/arena.cpp: Layout offsets, named views, bump allocation.
#include "core/arena.h"

#include <algorithm>

namespace crucible {

namespace {
std::size_t align_up(std::size_t n, std::size_t a) { return (n + a - 1) / a * a; }
}  // namespace

std::size_t Layout::add(std::string name, Shape shape, DType dtype) {
  CRUCIBLE_CHECK(!index_.count(name), "duplicate tensor name in layout: ", name);
  Entry e{name, shape, dtype, align_up(total_, kAlign)};
  total_ = e.offset + e.nbytes();
  index_.emplace(std::move(name), entries_.size());
  entries_.push_back(std::move(e));
  return entries_.size() - 1;
}

const Layout::Entry& Layout::at(std::string_view name) const {
  auto it = index_.find(std::string(name));
  CRUCIBLE_CHECK(it != index_.end(), "no tensor named ", name, " in layout");
  return entries_[it->second];
}

Layout Layout::with_dtype(DType dtype) const {
  Layout out;
  for (const Entry& e : entries_) out.add(e.name, e.shape, dtype);
  return out;
}

Arena::Arena(const Layout& layout, Device device, std::string name, std::size_t min_bytes)
    : layout_(layout),
      storage_(std::make_shared<Storage>(
          device, align_up(std::max(layout.total_bytes(), min_bytes), Layout::kAlign))),
      name_(std::move(name)) {}

std::size_t Arena::capacity() const { return storage_ ? storage_->bytes() : 0; }

Tensor Arena::flat_elems(DType dtype, std::int64_t numel) const {
  CRUCIBLE_CHECK(storage_, "arena ", name_, " is empty");
  CRUCIBLE_CHECK(numel >= 0 && static_cast<std::size_t>(numel) * dtype_size(dtype) <= storage_->bytes(), "arena ",
                 name_, ": ", numel, " ", dtype_name(dtype), " elements exceed its ", storage_->bytes(),
                 " bytes (reserve them when allocating)");
  return Tensor(storage_, 0, Shape{numel}, dtype, name_);
}

Tensor Arena::view(std::size_t index) const {
  CRUCIBLE_CHECK(index < layout_.entries().size(), "arena ", name_, " has no view ", index);
  const Layout::Entry& e = layout_.entries()[index];
  return Tensor(storage_, e.offset, e.shape, e.dtype, e.name);
}

Tensor Arena::view(std::string_view name) const {
  const Layout::Entry& e = layout_.at(name);
  return Tensor(storage_, e.offset, e.shape, e.dtype, e.name);
}

Tensor Arena::flat() const {
  return Tensor(storage_, 0, Shape{static_cast<std::int64_t>(layout_.total_bytes())}, DType::U8, name_);
}

void Arena::zero() {
  if (storage_) {
    Tensor all(storage_, 0, Shape{static_cast<std::int64_t>(storage_->bytes())}, DType::U8, name_);
    all.zero();
  }
}

ScratchArena::ScratchArena(Device device, std::size_t capacity_bytes, std::string name)
    : storage_(std::make_shared<Storage>(device, capacity_bytes)), name_(std::move(name)) {}

Tensor ScratchArena::alloc(std::string name, Shape shape, DType dtype) {
  const std::size_t offset = align_up(used_, Layout::kAlign);
  const std::size_t bytes = static_cast<std::size_t>(shape.numel()) * dtype_size(dtype);
  CRUCIBLE_CHECK(offset + bytes <= storage_->bytes(), "scratch arena ", name_, " out of space: ",
                 name, " ", shape.str(), " ", dtype_name(dtype), " needs ", bytes, " bytes at ",
                 offset, " of ", storage_->bytes(), " (raise its capacity)");
  used_ = offset + bytes;
  high_water_ = std::max(high_water_, used_);
  return Tensor(storage_, offset, shape, dtype, std::move(name));
}

}  // namespace crucible
