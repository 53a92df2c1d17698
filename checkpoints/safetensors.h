// checkpoints/safetensors.h: Hugging Face safetensors files, single and sharded.
//
// Layout (reference/checkpoint_formats.md §1): u64 little-endian N, then N bytes of
// UTF-8 JSON (an object, right-padded with spaces), then the data section. Every
// tensor entry names a dtype, a shape and data_offsets [begin, end) relative to the
// data section. A file is validated completely when it is opened, as the reference
// reader (safetensors/src/tensor.rs) does: tensors tile the data section with no
// hole, no overlap and no trailing byte, and no object key appears twice. So a file
// that opens reads without further checks, and every file that opens here also
// opens in Python's safetensors.
//
// Reading: SafetensorsFile maps a file read-only (or owns a byte buffer);
// read() copies one tensor out in its stored dtype, read_f32() converts to FP32.
// SafetensorsIndex sees a sharded checkpoint (model.safetensors.index.json) or a
// single file as one name -> tensor map and opens shards on first use.
// Writing: write_safetensors() writes "<path>.tmp", fsyncs it and renames it over
// <path>; write_safetensors_sharded() splits a model by a shard size cap and writes
// the index last.
//
// Dtypes: a file may hold F64 F32 F16 BF16 F8_E4M3 F8_E5M2 I64 I32 I16 I8 U8 BOOL;
// any other dtype is rejected when the file is opened. read() supports the nine
// that are crucible DTypes (all but I16, I8, BOOL); read_f32() supports all twelve.
// NOTE: little-endian hosts only (the data is little-endian and copied as is).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/dtype.h"
#include "core/json.h"
#include "core/tensor.h"

namespace crucible::checkpoints {

// The safetensors dtypes a file may hold here (spec strings in safetensors_dtype_name()).
enum class StDType : std::uint8_t { F64, F32, F16, BF16, F8_E4M3, F8_E5M2, I64, I32, I16, I8, U8, BOOL };

std::string_view safetensors_dtype_name(StDType t);        // "F64", "F8_E4M3", ...
std::optional<StDType> parse_safetensors_dtype(std::string_view name);  // exact spec string
std::size_t safetensors_dtype_size(StDType t);             // bytes per element
std::optional<DType> to_crucible_dtype(StDType t);         // nullopt for I16, I8, BOOL
StDType to_safetensors_dtype(DType t);                     // every DType has one

// String -> string, in file order (`__metadata__` in a file, "metadata" to write).
using SafetensorsMetadata = std::vector<std::pair<std::string, std::string>>;
// Tensors to write, in header order. Any device, any DType.
using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

struct SafetensorsTensorInfo {
  std::string name;
  StDType dtype = StDType::F32;
  Shape shape;               // rank <= Shape::kMaxDims
  std::uint64_t begin = 0;   // data_offsets, relative to the data section
  std::uint64_t end = 0;
  std::string_view dtype_name() const { return safetensors_dtype_name(dtype); }
  std::uint64_t nbytes() const { return end - begin; }
};

class SafetensorsFile {
 public:
  static constexpr std::uint64_t kMaxHeaderBytes = 100'000'000;  // as the Rust reader

  // Maps `path` read-only and validates it. Errors name the path, the tensor and
  // the byte offsets at fault.
  explicit SafetensorsFile(const std::string& path);
  // Parses and validates an in-memory file (kept inside the object); `source`
  // names it in errors.
  static SafetensorsFile from_bytes(std::string bytes, std::string source = "<memory>");

  const std::string& path() const { return source_; }
  // Tensor names in header order.
  const std::vector<std::string>& names() const { return names_; }
  std::size_t size() const { return infos_.size(); }
  bool contains(std::string_view name) const;
  // Throws, naming the file, when there is no such tensor.
  const SafetensorsTensorInfo& info(std::string_view name) const;
  // `__metadata__` (empty when absent), in file order.
  const SafetensorsMetadata& metadata() const { return metadata_; }
  // The metadata value of `key`, or nullptr.
  const std::string* metadata_value(std::string_view key) const;

  // Byte offset of the data section in the file (8 + header size).
  std::uint64_t data_offset() const { return data_begin_; }
  // The stored little-endian bytes of one tensor: a view into the mapping, valid
  // while this object (or a copy of it) lives.
  std::span<const std::uint8_t> bytes(std::string_view name) const;

  // A fresh CPU tensor in the stored dtype, named `name`. I16, I8 and BOOL have no
  // crucible DType: use read_f32().
  Tensor read(std::string_view name) const;
  // A fresh CPU FP32 tensor: narrow floats decoded exactly (core/numerics.h); F64
  // and integers rounded to nearest even (F64 overflow -> +-inf); BOOL -> 0 or 1.
  Tensor read_f32(std::string_view name) const;

 private:
  struct Bytes;  // a read-only mapping or an owned buffer
  static std::shared_ptr<const Bytes> map_file(const std::string& path);
  SafetensorsFile(std::shared_ptr<const Bytes> bytes, std::string source);
  void parse();

  std::shared_ptr<const Bytes> bytes_;
  std::string source_;
  std::uint64_t data_begin_ = 0;
  std::vector<SafetensorsTensorInfo> infos_;  // header order
  std::vector<std::string> names_;
  std::unordered_map<std::string, std::size_t> by_name_;
  SafetensorsMetadata metadata_;
};

// A name -> tensor map over one file or the shards of an index. Shards open on
// first use (thread-safe); every tensor read checks that the shard holds it.
class SafetensorsIndex {
 public:
  static constexpr const char* kSingleFile = "model.safetensors";
  static constexpr const char* kIndexFile = "model.safetensors.index.json";

  // A directory: <dir>/model.safetensors when present (as transformers prefers),
  // else <dir>/model.safetensors.index.json. A path ending in ".json": an index.
  // Any other file: a single safetensors file.
  static SafetensorsIndex open(const std::string& path);
  // An index ({"metadata": {...}, "weight_map": {name: shard file}}); shard files
  // are relative to the index's directory and must stay inside it.
  static SafetensorsIndex open_index(const std::string& index_path);
  static SafetensorsIndex open_file(const std::string& path);

  // The index path, or the single file's path.
  const std::string& path() const { return path_; }
  // weight_map order (file order for a single file).
  const std::vector<std::string>& names() const { return names_; }
  bool contains(std::string_view name) const { return shard_of_.count(std::string(name)) != 0; }
  // The shard's path (dir + file name) of a tensor; throws naming the index.
  const std::string& shard_path(std::string_view name) const;
  // The shard files in order of first appearance in weight_map.
  const std::vector<std::string>& shard_paths() const { return shard_paths_; }
  // The index's "metadata" object ({} when absent or for a single file).
  const json::Value& metadata() const { return metadata_; }

  // The opened shard holding `name` (opened now if needed).
  const SafetensorsFile& shard_for(std::string_view name) const;
  const SafetensorsTensorInfo& info(std::string_view name) const;
  Tensor read(std::string_view name) const;
  Tensor read_f32(std::string_view name) const;
  // Opens every shard and checks that each holds the tensors weight_map puts in it.
  void check_all() const;

 private:
  SafetensorsIndex() = default;
  const SafetensorsFile& open_shard(const std::string& shard_path) const;

  std::string path_;
  std::vector<std::string> names_;
  std::unordered_map<std::string, std::string> shard_of_;  // name -> shard path
  std::vector<std::string> shard_paths_;
  json::Value metadata_ = json::Value::object();
  // Opened shards by path; guarded by *mutex_ (held in pointers so the index moves).
  std::unique_ptr<std::mutex> mutex_ = std::make_unique<std::mutex>();
  mutable std::unordered_map<std::string, std::unique_ptr<SafetensorsFile>> shards_;
};

// Encodes a whole file in memory (tests, fuzzing, small files). The header lists
// the tensors in the given order, after `__metadata__`; {"format": "pt"} is put
// first unless `metadata` has a "format" key (transformers checks it). The header
// is padded with spaces to a multiple of 8 and the data is laid out by descending
// element size (stable), so every tensor starts aligned to its element size, as
// the reference writer does. Names must be unique, non-empty, UTF-8 and not
// "__metadata__".
std::string encode_safetensors(const NamedTensors& tensors, const SafetensorsMetadata& metadata = {});

// Writes the same bytes to "<path>.tmp", fsyncs, renames it to `path` and fsyncs
// the directory: `path` holds either its old content or the whole new file.
// Tensors on a GPU are copied to the host one at a time.
void write_safetensors(const std::string& path, const NamedTensors& tensors,
                       const SafetensorsMetadata& metadata = {});

// Writes `tensors` into `dir` (created if needed) as shards of at most
// `max_shard_bytes` of tensor data each, filled greedily in the given order (a
// tensor larger than the cap gets a shard of its own). One shard: "model.safetensors".
// More: "model-00001-of-0000N.safetensors"... and then, last,
// "model.safetensors.index.json" with {"metadata": {"total_size"}, "weight_map"}.
// Removes a stale model.safetensors / index and stale model-*-of-*.safetensors
// shards of an earlier save, so the directory opens as what was written.
// Returns the file names written, index last.
std::vector<std::string> write_safetensors_sharded(const std::string& dir, const NamedTensors& tensors,
                                                   std::uint64_t max_shard_bytes,
                                                   const SafetensorsMetadata& metadata = {});

}  // namespace crucible::checkpoints
