// core/arena.h: flat buffers with named views (STYLE.md principle 3).
//
// A Layout lists named tensors (name, shape, dtype) and assigns each a byte offset
// in one buffer, aligned to kAlign. Parameters, gradients and optimizer moments are
// each one Arena built from the same Layout, so the i-th view of each lines up;
// all-reduce, ZeRO sharding and checkpoints then work on one contiguous buffer
// (offset arithmetic). The activation arena of a step is a bump allocator that is
// reset, not freed, between steps.
#pragma once

#include <cstddef>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/tensor.h"

namespace crucible {

class Layout {
 public:
  static constexpr std::size_t kAlign = 256;  // bytes; keeps every view vector- and TMA-aligned

  struct Entry {
    std::string name;
    Shape shape;
    DType dtype;
    std::size_t offset;  // bytes from the buffer start
    std::size_t nbytes() const { return static_cast<std::size_t>(shape.numel()) * dtype_size(dtype); }
  };

  // Appends a tensor; names must be unique. Returns its index.
  std::size_t add(std::string name, Shape shape, DType dtype);
  const std::vector<Entry>& entries() const { return entries_; }
  const Entry& at(std::string_view name) const;  // throws when absent
  bool contains(std::string_view name) const { return index_.count(std::string(name)) != 0; }
  std::size_t total_bytes() const { return total_; }
  // The same names and shapes in another dtype (e.g. FP32 master -> BF16 moments).
  Layout with_dtype(DType dtype) const;

 private:
  std::vector<Entry> entries_;
  std::unordered_map<std::string, std::size_t> index_;
  std::size_t total_ = 0;
};

// One buffer holding every tensor of a Layout.
class Arena {
 public:
  Arena() = default;
  // min_bytes > total_bytes reserves room past the last view (ZeRO-1 pads its flat
  // buffers to world equal blocks: dist/shard.h); the storage holds max of the two.
  Arena(const Layout& layout, Device device, std::string name, std::size_t min_bytes = 0);

  const Layout& layout() const { return layout_; }
  Tensor view(std::string_view name) const;
  Tensor view(std::size_t index) const;
  // The whole buffer as a flat byte tensor [total_bytes] (for collectives and I/O).
  Tensor flat() const;
  std::size_t bytes() const { return layout_.total_bytes(); }
  // Bytes of the storage (>= bytes(): alignment and reserved padding).
  std::size_t capacity() const;
  // The first `numel` elements of the storage as one flat [numel] tensor of `dtype`,
  // padding past the last view included (numel * size <= capacity()).
  Tensor flat_elems(DType dtype, std::int64_t numel) const;
  void zero();  // the whole storage, padding included

 private:
  Layout layout_;
  std::shared_ptr<Storage> storage_;
  std::string name_;
};

// A bump allocator for per-step activations and scratch. alloc() never frees;
// reset() makes the whole capacity available again. Running out is an error that
// names the request and the high-water mark, so the capacity can be sized.
class ScratchArena {
 public:
  ScratchArena(Device device, std::size_t capacity_bytes, std::string name);
  Tensor alloc(std::string name, Shape shape, DType dtype);
  void reset() { used_ = 0; }
  std::size_t used() const { return used_; }
  std::size_t high_water() const { return high_water_; }
  std::size_t capacity() const { return storage_->bytes(); }

 private:
  std::shared_ptr<Storage> storage_;
  std::string name_;
  std::size_t used_ = 0;
  std::size_t high_water_ = 0;
};

}  // namespace crucible
