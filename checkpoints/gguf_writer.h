// checkpoints/gguf_writer.h: writes GGUF v3 files (metadata + tensors) as llama.cpp loads them.
//
// Layout (reference/checkpoint_formats.md §4.1): u32 magic, u32 version 3, u64 tensor
// count, u64 KV count, the KVs (key string, u32 type, value), the tensor infos (name,
// u32 n_dims, u64 ne[n_dims], u32 ggml type, u64 offset), zero padding to the
// alignment, then each tensor's bytes at its offset, zero-padded to the alignment
// (after the last one too). Offsets are the running sum of padded sizes, as ggml's
// reader requires. All integers little-endian.
//
// Tensor data is produced on demand while the file is written (one tensor in memory
// at a time). write() writes "<path>.tmp", fsyncs it and renames it over `path`, so
// `path` never holds a half-written file.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "checkpoints/gguf_format.h"

namespace crucible::checkpoints {

// Makes the bytes of one tensor: exactly ggml_nbytes(type, ne) of them.
using GgufTensorBytes = std::function<std::vector<std::uint8_t>()>;

struct GgufTensorEntry {
  std::string name;              // < 64 bytes, unique
  std::vector<std::int64_t> ne;  // ggml order: ne[0] is the innermost (reversed torch shape)
  GgmlType type = GgmlType::F32;
  GgufTensorBytes bytes;
};

class GgufWriter {
 public:
  // `alignment` (a power of two in [8, 1 MiB]) is written as general.alignment (u32).
  explicit GgufWriter(std::uint32_t alignment = kGgufDefaultAlignment);

  // Adds a metadata key; keys are unique (setting one twice is an error) and kept in
  // insertion order. general.alignment is managed by the writer.
  void set(std::string key, GgufValue value);
  const GgufValue* find(std::string_view key) const;
  const std::vector<std::pair<std::string, GgufValue>>& kvs() const { return kvs_; }

  // Adds a tensor (checked: name length and uniqueness, 1..4 dims, ne[0] divisible by
  // the type's block). Tensors are written in the order added.
  void add_tensor(std::string name, std::vector<std::int64_t> ne, GgmlType type, GgufTensorBytes bytes);
  const std::vector<GgufTensorEntry>& tensors() const { return tensors_; }
  std::uint32_t alignment() const { return alignment_; }

  // The whole file in memory (tests, fuzz seeds, small files).
  std::string encode() const;
  // Atomic file write (see the header comment).
  void write(const std::string& path) const;

 private:
  template <typename Sink>
  void emit(Sink& sink) const;

  std::uint32_t alignment_;
  std::vector<std::pair<std::string, GgufValue>> kvs_;
  std::vector<GgufTensorEntry> tensors_;
};

}  // namespace crucible::checkpoints
