// checkpoints/gguf_reader.h: reads and validates GGUF v2/v3 files (tests, `inspect`, export checks).
//
// A file is validated completely when it is opened, with the rules of ggml's reader
// (src/gguf.cpp gguf_init_from_file_impl): magic and version (1 and > 3 refused),
// non-empty unique keys, known value types, no nested arrays, counts bounded by the
// bytes left, general.alignment a u32 power of two, tensor names < 64 bytes and
// unique, 0..4 dims, non-negative dims whose product fits int64, a known ggml type
// whose block divides ne[0], offsets equal to the running padded sum, and every
// tensor's bytes inside the file. Any violation throws crucible::Error naming the
// source, the byte offset and what was wrong; nothing else is thrown.
// NOTE: little-endian hosts only, as the files are.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "checkpoints/gguf_format.h"

namespace crucible::checkpoints {

struct GgufTensorInfo {
  std::string name;
  std::vector<std::int64_t> ne;  // ggml order (ne[0] innermost)
  GgmlType type = GgmlType::F32;
  std::uint64_t offset = 0;      // relative to the data section
  std::uint64_t nbytes = 0;
  std::int64_t numel() const;
};

class GgufFile {
 public:
  // Maps `path` read-only and validates it.
  static GgufFile open(const std::string& path);
  // Validates an in-memory file (kept inside the object); `source` names it in errors.
  static GgufFile from_bytes(std::string bytes, std::string source = "<memory>");

  const std::string& source() const { return source_; }
  std::uint32_t version() const { return version_; }
  std::uint32_t alignment() const { return alignment_; }
  std::uint64_t data_offset() const { return data_offset_; }  // file offset of the data section

  // Metadata in file order.
  const std::vector<std::pair<std::string, GgufValue>>& kvs() const { return kvs_; }
  const GgufValue* find(std::string_view key) const;
  const GgufValue& at(std::string_view key) const;  // throws naming the file and the key

  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  const GgufTensorInfo* find_tensor(std::string_view name) const;
  const GgufTensorInfo& tensor(std::string_view name) const;  // throws naming the file
  // The stored bytes of one tensor (a view valid while this object lives).
  std::span<const std::uint8_t> tensor_bytes(std::string_view name) const;
  // Decodes F32, F16, BF16 and Q8_0 tensors to FP32 (ggml element order).
  std::vector<float> read_f32(std::string_view name) const;

 private:
  struct Bytes;
  GgufFile(std::shared_ptr<const Bytes> bytes, std::string source);
  void parse();

  std::shared_ptr<const Bytes> bytes_;
  std::string source_;
  std::uint32_t version_ = 0;
  std::uint32_t alignment_ = kGgufDefaultAlignment;
  std::uint64_t data_offset_ = 0;
  std::vector<std::pair<std::string, GgufValue>> kvs_;
  std::unordered_map<std::string, std::size_t> kv_index_;
  std::vector<GgufTensorInfo> tensors_;
  std::unordered_map<std::string, std::size_t> tensor_index_;
};

}  // namespace crucible::checkpoints
