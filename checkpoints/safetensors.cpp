// checkpoints/safetensors.cpp: safetensors reading (SafetensorsFile, SafetensorsIndex).
//
// Invariant: a SafetensorsFile exists only for bytes that passed every check of the
// reference reader (8-byte size, header <= 100 MB and inside the file, a JSON object
// with unique keys, a string -> string `__metadata__`, known dtypes, non-negative
// integer shapes whose byte size matches data_offsets, and tensors that tile the
// data section exactly); reads after that cannot fail on the file's content.
// Reference: reference/checkpoint_formats.md §1; safetensors/src/tensor.rs
// (Metadata::validate); huggingface_hub sharding (model.safetensors.index.json).
#include "checkpoints/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cfloat>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <numeric>
#include <unordered_set>

#include "core/error.h"
#include "core/numerics.h"

namespace crucible::checkpoints {

static_assert(std::endian::native == std::endian::little,
              "safetensors data is little-endian and is copied as is");

namespace {

constexpr StDType kAllDTypes[] = {StDType::F64, StDType::F32, StDType::F16, StDType::BF16,
                                  StDType::F8_E4M3, StDType::F8_E5M2, StDType::I64, StDType::I32,
                                  StDType::I16, StDType::I8, StDType::U8, StDType::BOOL};
// Valid in the spec (tensor.rs Dtype) but not read here.
constexpr std::string_view kUnsupportedSpecDTypes[] = {
    "F4", "F6_E2M3", "F6_E3M2", "F8_E8M0", "F8_E4M3FNUZ", "F8_E5M2FNUZ", "U16", "U32", "U64", "C64"};
constexpr const char* kSupportedList = "F64, F32, F16, BF16, F8_E4M3, F8_E5M2, I64, I32, I16, I8, U8, BOOL";

std::string q(std::string_view s) { return json::quote(s); }  // names are valid UTF-8 once parsed

std::string describe_byte(std::uint8_t b) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s = "byte 0x";
  s += kHex[b >> 4];
  s += kHex[b & 15];
  if (b >= 0x20 && b < 0x7f) s += std::string(" ('") + static_cast<char>(b) + "')";
  return s;
}

// json::parse keeps the last of duplicate keys, but safetensors forbids them (and a
// duplicate tensor name would hide a tensor), so walk the already validated text
// once and check the keys of every object. `base` is the text's offset in the file.
void check_unique_keys(std::string_view text, const std::string& source, std::uint64_t base) {
  struct Frame {
    bool object;
    bool expect_key;
    std::unordered_set<std::string> keys;
  };
  std::vector<Frame> stack;
  for (std::size_t i = 0; i < text.size(); ++i) {
    switch (text[i]) {
      case '{': stack.push_back({true, true, {}}); break;
      case '[': stack.push_back({false, false, {}}); break;
      case '}':
      case ']': stack.pop_back(); break;
      case ',':
        if (stack.back().object) stack.back().expect_key = true;
        break;
      case '"': {
        std::size_t j = i + 1;
        bool escaped = false;
        for (; text[j] != '"'; ++j) {
          if (text[j] == '\\') ++j, escaped = true;  // the escaped char is never the closing quote
        }
        Frame& top = stack.back();
        if (top.object && top.expect_key) {
          std::string key = escaped ? json::parse(text.substr(i, j - i + 1), source).as_string()
                                    : std::string(text.substr(i + 1, j - i - 1));
          CRUCIBLE_USER_CHECK(top.keys.insert(key).second, source, ": duplicate key ", q(key),
                              " at byte offset ", base + i, " (safetensors forbids duplicate names and keys)");
          top.expect_key = false;
        }
        i = j;
        break;
      }
      default: break;
    }
  }
}

std::uint64_t non_negative_integer(const json::Value& v, const std::string& where, const char* what) {
  CRUCIBLE_USER_CHECK(v.is_integer() && v.as_int64() >= 0, where, ": ", what,
                      " must be non-negative integers, found ",
                      v.is_number() || v.is_string() || v.is_bool() || v.is_null() ? json::dump(v) : json::kind_name(v.kind()));
  return static_cast<std::uint64_t>(v.as_int64());
}

SafetensorsTensorInfo parse_entry(const std::string& source, const std::string& name, const json::Value& v,
                                  std::uint64_t data_begin, std::uint64_t data_size) {
  const std::string where = source + ": tensor " + q(name);
  CRUCIBLE_USER_CHECK(v.is_object(), where, ": expected an object with \"dtype\", \"shape\" and \"data_offsets\", got ",
                      json::kind_name(v.kind()), " (header line ", v.line(), ")");
  SafetensorsTensorInfo info;
  info.name = name;

  const json::Value* dtype = v.find("dtype");
  CRUCIBLE_USER_CHECK(dtype, where, ": missing \"dtype\"");
  CRUCIBLE_USER_CHECK(dtype->is_string(), where, ": \"dtype\" must be a string, got ", json::kind_name(dtype->kind()));
  const std::string& dname = dtype->as_string();
  const auto parsed = parse_safetensors_dtype(dname);
  if (!parsed) {
    const bool spec = std::find(std::begin(kUnsupportedSpecDTypes), std::end(kUnsupportedSpecDTypes), dname) !=
                      std::end(kUnsupportedSpecDTypes);
    CRUCIBLE_FAIL(where, spec ? ": dtype " : ": unknown dtype ", q(dname),
                  spec ? " is not supported by crucible" : "", " (supported: ", kSupportedList, ")");
  }
  info.dtype = *parsed;

  const json::Value* shape = v.find("shape");
  CRUCIBLE_USER_CHECK(shape, where, ": missing \"shape\"");
  CRUCIBLE_USER_CHECK(shape->is_array(), where, ": \"shape\" must be an array, got ", json::kind_name(shape->kind()));
  CRUCIBLE_USER_CHECK(shape->size() <= static_cast<std::size_t>(Shape::kMaxDims), where, ": shape has ",
                      shape->size(), " dims; crucible tensors have at most ", Shape::kMaxDims);
  // The running product must fit int64 (as tensor.rs's checked product), so no
  // later numel() can overflow, whatever the dims.
  std::int64_t numel = 1;
  for (const json::Value& d : shape->as_array()) {
    const std::uint64_t dim = non_negative_integer(d, where, "shape dims");
    CRUCIBLE_USER_CHECK(!__builtin_mul_overflow(numel, static_cast<std::int64_t>(dim), &numel), where, ": shape ",
                        json::dump(*shape), " has more elements than fit in 64 bits");
    info.shape.push_back(static_cast<std::int64_t>(dim));
  }
  std::uint64_t nbytes = 0;
  CRUCIBLE_USER_CHECK(!__builtin_mul_overflow(static_cast<std::uint64_t>(numel), safetensors_dtype_size(info.dtype),
                                              &nbytes),
                      where, ": shape ", json::dump(*shape), " of ", dname, " has more bytes than fit in 64 bits");

  const json::Value* offsets = v.find("data_offsets");
  CRUCIBLE_USER_CHECK(offsets, where, ": missing \"data_offsets\"");
  CRUCIBLE_USER_CHECK(offsets->is_array() && offsets->size() == 2, where,
                      ": \"data_offsets\" must be an array [begin, end], got ", json::dump(*offsets));
  info.begin = non_negative_integer(offsets->as_array()[0], where, "data_offsets");
  info.end = non_negative_integer(offsets->as_array()[1], where, "data_offsets");
  const std::string range = "data_offsets [" + std::to_string(info.begin) + ", " + std::to_string(info.end) + "]";
  CRUCIBLE_USER_CHECK(info.begin <= info.end, where, ": ", range, " are reversed (begin > end)");
  CRUCIBLE_USER_CHECK(info.end <= data_size, where, ": ", range, " run past the end of the data section (",
                      data_size, " bytes, file bytes ", data_begin, "-", data_begin + data_size,
                      "): the file is truncated or the offsets are wrong");
  CRUCIBLE_USER_CHECK(info.end - info.begin == nbytes, where, ": ", range, " span ", info.end - info.begin,
                      " bytes but shape ", info.shape.str(), " of ", dname, " needs ", nbytes, " bytes");
  return info;
}

// Tensors must tile [0, data_size) exactly: no overlap, no hole, no trailing byte.
void check_layout(const std::string& source, const std::vector<SafetensorsTensorInfo>& infos,
                  std::uint64_t data_size) {
  std::vector<std::size_t> order(infos.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return std::pair(infos[a].begin, infos[a].end) < std::pair(infos[b].begin, infos[b].end);
  });
  std::uint64_t covered = 0;
  const SafetensorsTensorInfo* last = nullptr;  // the tensor that ends at `covered`
  auto range = [](const SafetensorsTensorInfo& t) {
    return "[" + std::to_string(t.begin) + ", " + std::to_string(t.end) + "]";
  };
  for (std::size_t i : order) {
    const SafetensorsTensorInfo& t = infos[i];
    CRUCIBLE_USER_CHECK(t.begin >= covered, source, ": tensor ", q(t.name), " (data_offsets ", range(t),
                        ") overlaps tensor ", q(last->name), " (data_offsets ", range(*last), ")");
    CRUCIBLE_USER_CHECK(t.begin == covered, source, ": bytes [", covered, ", ", t.begin,
                        ") of the data section belong to no tensor (next: ", q(t.name), ", data_offsets ", range(t),
                        "); tensors must cover the data section without holes");
    covered = t.end;
    last = &t;
  }
  CRUCIBLE_USER_CHECK(covered == data_size, source, ": ", data_size - covered,
                      " trailing bytes after the last tensor (data section of ", data_size,
                      " bytes, tensors cover ", covered, ")");
}

template <typename T>
T load(const std::uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// IEEE round to nearest even, as numpy's astype: a plain cast is undefined beyond
// the float range, so overflow (|d| at or past halfway to 2^128) is explicit.
float f64_to_f32(double d) {
  constexpr double kOverflow = static_cast<double>(FLT_MAX) + 0x1p103;
  if (d >= kOverflow) return std::numeric_limits<float>::infinity();
  if (d <= -kOverflow) return -std::numeric_limits<float>::infinity();
  return static_cast<float>(d);
}

}  // namespace

// ---------------------------------------------------------------------------------
// dtypes

std::string_view safetensors_dtype_name(StDType t) {
  switch (t) {
    case StDType::F64: return "F64";
    case StDType::F32: return "F32";
    case StDType::F16: return "F16";
    case StDType::BF16: return "BF16";
    case StDType::F8_E4M3: return "F8_E4M3";
    case StDType::F8_E5M2: return "F8_E5M2";
    case StDType::I64: return "I64";
    case StDType::I32: return "I32";
    case StDType::I16: return "I16";
    case StDType::I8: return "I8";
    case StDType::U8: return "U8";
    case StDType::BOOL: return "BOOL";
  }
  return "?";
}

std::optional<StDType> parse_safetensors_dtype(std::string_view name) {
  for (StDType t : kAllDTypes)
    if (safetensors_dtype_name(t) == name) return t;
  return std::nullopt;
}

std::size_t safetensors_dtype_size(StDType t) {
  switch (t) {
    case StDType::F64: case StDType::I64: return 8;
    case StDType::F32: case StDType::I32: return 4;
    case StDType::F16: case StDType::BF16: case StDType::I16: return 2;
    case StDType::F8_E4M3: case StDType::F8_E5M2: case StDType::I8: case StDType::U8: case StDType::BOOL: return 1;
  }
  return 0;
}

std::optional<DType> to_crucible_dtype(StDType t) {
  switch (t) {
    case StDType::F64: return DType::F64;
    case StDType::F32: return DType::F32;
    case StDType::F16: return DType::F16;
    case StDType::BF16: return DType::BF16;
    case StDType::F8_E4M3: return DType::E4M3;
    case StDType::F8_E5M2: return DType::E5M2;
    case StDType::I64: return DType::I64;
    case StDType::I32: return DType::I32;
    case StDType::U8: return DType::U8;
    case StDType::I16: case StDType::I8: case StDType::BOOL: return std::nullopt;
  }
  return std::nullopt;
}

StDType to_safetensors_dtype(DType t) {
  switch (t) {
    case DType::F64: return StDType::F64;
    case DType::F32: return StDType::F32;
    case DType::BF16: return StDType::BF16;
    case DType::F16: return StDType::F16;
    case DType::E4M3: return StDType::F8_E4M3;
    case DType::E5M2: return StDType::F8_E5M2;
    case DType::I64: return StDType::I64;
    case DType::I32: return StDType::I32;
    case DType::U8: return StDType::U8;
  }
  CRUCIBLE_FAIL("DType ", static_cast<int>(t), " has no safetensors dtype");
}

// ---------------------------------------------------------------------------------
// SafetensorsFile

struct SafetensorsFile::Bytes {
  const std::uint8_t* data = nullptr;
  std::size_t size = 0;
  void* map = nullptr;  // munmap'ed on destruction when set
  std::string owned;
  Bytes() = default;
  Bytes(const Bytes&) = delete;
  Bytes& operator=(const Bytes&) = delete;
  ~Bytes() {
    if (map) ::munmap(map, size);
  }
};

SafetensorsFile::SafetensorsFile(std::shared_ptr<const Bytes> bytes, std::string source)
    : bytes_(std::move(bytes)), source_(std::move(source)) {
  parse();
}

SafetensorsFile::SafetensorsFile(const std::string& path) : SafetensorsFile(map_file(path), path) {}

SafetensorsFile SafetensorsFile::from_bytes(std::string bytes, std::string source) {
  auto b = std::make_shared<Bytes>();
  b->owned = std::move(bytes);
  b->data = reinterpret_cast<const std::uint8_t*>(b->owned.data());
  b->size = b->owned.size();
  return SafetensorsFile(std::move(b), std::move(source));
}

// NOTE: a mapping, not a read: import touches each byte once and the page cache
// serves shards larger than RAM. A file truncated by someone else while mapped
// raises SIGBUS on access; checkpoints are replaced by rename, never truncated.
std::shared_ptr<const SafetensorsFile::Bytes> SafetensorsFile::map_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  CRUCIBLE_USER_CHECK(fd >= 0, path, ": cannot open safetensors file: ", std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    const int err = errno;
    const bool is_dir = S_ISDIR(st.st_mode);
    ::close(fd);
    CRUCIBLE_FAIL(path, is_dir ? ": is a directory, not a safetensors file" : ": not a regular file",
                  is_dir || err == 0 ? "" : std::string(": ") + std::strerror(err));
  }
  auto b = std::make_shared<Bytes>();
  b->size = static_cast<std::size_t>(st.st_size);
  if (b->size > 0) {
    void* m = ::mmap(nullptr, b->size, PROT_READ, MAP_PRIVATE, fd, 0);
    const int err = errno;
    ::close(fd);
    CRUCIBLE_USER_CHECK(m != MAP_FAILED, path, ": cannot map ", b->size, " bytes: ", std::strerror(err));
    b->map = m;
    b->data = static_cast<const std::uint8_t*>(m);
  } else {
    ::close(fd);
  }
  return b;
}

void SafetensorsFile::parse() {
  const std::uint8_t* p = bytes_->data;
  const std::uint64_t file_size = bytes_->size;
  CRUCIBLE_USER_CHECK(file_size >= 8, source_, ": truncated: the file is ", file_size,
                      " bytes, but a safetensors file starts with an 8-byte header size");
  std::uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<std::uint64_t>(p[i]) << (8 * i);
  CRUCIBLE_USER_CHECK(n <= kMaxHeaderBytes, source_, ": header size ", n, " (bytes 0-7, little-endian) exceeds the ",
                      kMaxHeaderBytes, "-byte limit: not a safetensors file, or a damaged one");
  CRUCIBLE_USER_CHECK(n <= file_size - 8, source_, ": header size ", n, " (bytes 0-7) runs past the end of the file (",
                      file_size, " bytes): the file is truncated or not a safetensors file");
  CRUCIBLE_USER_CHECK(n > 0, source_, ": the header is empty (size 0 in bytes 0-7)");
  CRUCIBLE_USER_CHECK(p[8] == '{', source_, ": the header (bytes 8-", 8 + n,
                      ") must be a JSON object starting with '{', found ", describe_byte(p[8]));
  const std::string_view text(reinterpret_cast<const char*>(p + 8), n);
  // Errors read "<path> header:<line>:<col>: <what>" (invalid JSON, invalid UTF-8).
  const json::Value root = json::parse(text, source_ + " header");
  check_unique_keys(text, source_, 8);

  data_begin_ = 8 + n;
  const std::uint64_t data_size = file_size - data_begin_;
  for (const auto& [key, value] : root.as_object()) {
    if (key == "__metadata__") {
      if (value.is_null()) continue;  // serde reads null as "no metadata"
      CRUCIBLE_USER_CHECK(value.is_object(), source_, ": \"__metadata__\" must be an object of strings, got ",
                          json::kind_name(value.kind()));
      for (const auto& [mk, mv] : value.as_object()) {
        CRUCIBLE_USER_CHECK(mv.is_string(), source_, ": \"__metadata__\" value of ", q(mk),
                            " must be a string (safetensors metadata is flat string -> string), got ",
                            json::kind_name(mv.kind()));
        metadata_.emplace_back(mk, mv.as_string());
      }
      continue;
    }
    infos_.push_back(parse_entry(source_, key, value, data_begin_, data_size));
  }
  check_layout(source_, infos_, data_size);
  names_.reserve(infos_.size());
  for (std::size_t i = 0; i < infos_.size(); ++i) {
    names_.push_back(infos_[i].name);
    by_name_.emplace(infos_[i].name, i);
  }
}

bool SafetensorsFile::contains(std::string_view name) const { return by_name_.count(std::string(name)) != 0; }

const SafetensorsTensorInfo& SafetensorsFile::info(std::string_view name) const {
  auto it = by_name_.find(std::string(name));
  if (it == by_name_.end()) {
    std::string some;
    for (std::size_t i = 0; i < names_.size() && i < 3; ++i) some += (i ? ", " : "") + q(names_[i]);
    CRUCIBLE_FAIL(source_, ": no tensor ", q(name), " (the file has ", names_.size(), " tensors",
                  names_.empty() ? "" : ": " + some + (names_.size() > 3 ? ", ..." : ""), ")");
  }
  return infos_[it->second];
}

const std::string* SafetensorsFile::metadata_value(std::string_view key) const {
  for (const auto& [k, v] : metadata_)
    if (k == key) return &v;
  return nullptr;
}

std::span<const std::uint8_t> SafetensorsFile::bytes(std::string_view name) const {
  const SafetensorsTensorInfo& t = info(name);
  return {bytes_->data + data_begin_ + t.begin, static_cast<std::size_t>(t.nbytes())};
}

Tensor SafetensorsFile::read(std::string_view name) const {
  const SafetensorsTensorInfo& t = info(name);
  const std::optional<DType> dtype = to_crucible_dtype(t.dtype);
  CRUCIBLE_USER_CHECK(dtype, source_, ": tensor ", q(name), " has dtype ", t.dtype_name(),
                      ", which crucible tensors cannot hold; read it with read_f32()");
  Tensor out(t.shape, *dtype, Device::cpu(), t.name);
  const auto src = bytes(name);
  if (!src.empty()) std::memcpy(out.raw(), src.data(), src.size());
  return out;
}

Tensor SafetensorsFile::read_f32(std::string_view name) const {
  const SafetensorsTensorInfo& t = info(name);
  Tensor out(t.shape, DType::F32, Device::cpu(), t.name);
  float* dst = static_cast<float*>(out.raw());
  const std::uint8_t* src = bytes(name).data();
  const std::size_t n = static_cast<std::size_t>(t.shape.numel());
  const std::size_t w = safetensors_dtype_size(t.dtype);
  auto convert = [&](auto&& decode) {
    for (std::size_t i = 0; i < n; ++i) dst[i] = decode(src + i * w);
  };
  switch (t.dtype) {
    case StDType::F32: if (n) std::memcpy(dst, src, n * 4); break;
    case StDType::F64: convert([](const std::uint8_t* p) { return f64_to_f32(load<double>(p)); }); break;
    case StDType::F16: convert([](const std::uint8_t* p) { return f16_to_f32(load<std::uint16_t>(p)); }); break;
    case StDType::BF16: convert([](const std::uint8_t* p) { return bf16_to_f32(load<std::uint16_t>(p)); }); break;
    case StDType::F8_E4M3: convert([](const std::uint8_t* p) { return e4m3_to_f32(*p); }); break;
    case StDType::F8_E5M2: convert([](const std::uint8_t* p) { return e5m2_to_f32(*p); }); break;
    case StDType::I64: convert([](const std::uint8_t* p) { return static_cast<float>(load<std::int64_t>(p)); }); break;
    case StDType::I32: convert([](const std::uint8_t* p) { return static_cast<float>(load<std::int32_t>(p)); }); break;
    case StDType::I16: convert([](const std::uint8_t* p) { return static_cast<float>(load<std::int16_t>(p)); }); break;
    case StDType::I8: convert([](const std::uint8_t* p) { return static_cast<float>(static_cast<std::int8_t>(*p)); }); break;
    case StDType::U8: convert([](const std::uint8_t* p) { return static_cast<float>(*p); }); break;
    case StDType::BOOL: convert([](const std::uint8_t* p) { return *p ? 1.0f : 0.0f; }); break;
  }
  return out;
}

// ---------------------------------------------------------------------------------
// SafetensorsIndex

namespace fs = std::filesystem;

SafetensorsIndex SafetensorsIndex::open(const std::string& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    const fs::path dir(path);
    if (fs::exists(dir / kSingleFile, ec)) return open_file((dir / kSingleFile).string());
    if (fs::exists(dir / kIndexFile, ec)) return open_index((dir / kIndexFile).string());
    CRUCIBLE_FAIL(path, ": no ", kSingleFile, " or ", kIndexFile,
                  " in this directory (expected a Hugging Face model directory)");
  }
  if (path.ends_with(".json")) return open_index(path);
  return open_file(path);
}

SafetensorsIndex SafetensorsIndex::open_file(const std::string& path) {
  SafetensorsIndex index;
  index.path_ = path;
  auto file = std::make_unique<SafetensorsFile>(path);
  index.names_ = file->names();
  for (const std::string& name : index.names_) index.shard_of_.emplace(name, path);
  index.shard_paths_.push_back(path);
  index.shards_.emplace(path, std::move(file));
  return index;
}

SafetensorsIndex SafetensorsIndex::open_index(const std::string& index_path) {
  std::ifstream in(index_path, std::ios::binary);
  CRUCIBLE_USER_CHECK(in, index_path, ": cannot open safetensors index: ", std::strerror(errno));
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const json::Value root = json::parse(text, index_path);
  check_unique_keys(text, index_path, 0);
  CRUCIBLE_USER_CHECK(root.is_object(), index_path, ": a safetensors index must be a JSON object, got ",
                      json::kind_name(root.kind()));

  SafetensorsIndex index;
  index.path_ = index_path;
  if (const json::Value* meta = root.find("metadata"); meta && !meta->is_null()) {
    CRUCIBLE_USER_CHECK(meta->is_object(), index_path, ": \"metadata\" must be an object, got ",
                        json::kind_name(meta->kind()));
    index.metadata_ = *meta;
  }
  const json::Value* map = root.find("weight_map");
  CRUCIBLE_USER_CHECK(map, index_path, ": missing \"weight_map\" (tensor name -> shard file)");
  CRUCIBLE_USER_CHECK(map->is_object(), index_path, ": \"weight_map\" must be an object, got ",
                      json::kind_name(map->kind()));
  const fs::path dir = fs::path(index_path).parent_path();
  std::unordered_set<std::string> seen_shards;
  for (const auto& [name, file] : map->as_object()) {
    CRUCIBLE_USER_CHECK(file.is_string(), index_path, ": weight_map[", q(name), "] must be a file name, got ",
                        json::kind_name(file.kind()));
    const fs::path rel(file.as_string());
    bool inside = !rel.empty() && rel.is_relative();
    for (const auto& part : rel) inside = inside && part != "..";
    CRUCIBLE_USER_CHECK(inside, index_path, ": weight_map[", q(name), "] = ", q(file.as_string()),
                        " is not a file name inside the index's directory");
    const std::string shard = (dir / rel).string();
    index.names_.push_back(name);
    index.shard_of_.emplace(name, shard);
    if (seen_shards.insert(shard).second) index.shard_paths_.push_back(shard);
  }
  return index;
}

const std::string& SafetensorsIndex::shard_path(std::string_view name) const {
  auto it = shard_of_.find(std::string(name));
  CRUCIBLE_USER_CHECK(it != shard_of_.end(), path_, ": no tensor ", q(name), " (", names_.size(),
                      " tensors in this checkpoint)");
  return it->second;
}

const SafetensorsFile& SafetensorsIndex::open_shard(const std::string& shard_path) const {
  std::lock_guard<std::mutex> lock(*mutex_);
  auto it = shards_.find(shard_path);
  if (it != shards_.end()) return *it->second;
  std::error_code ec;
  CRUCIBLE_USER_CHECK(fs::exists(shard_path, ec), path_, ": shard ", shard_path,
                      " named in weight_map does not exist");
  auto file = std::make_unique<SafetensorsFile>(shard_path);
  return *shards_.emplace(shard_path, std::move(file)).first->second;
}

const SafetensorsFile& SafetensorsIndex::shard_for(std::string_view name) const {
  const std::string& shard = shard_path(name);
  const SafetensorsFile& file = open_shard(shard);
  CRUCIBLE_USER_CHECK(file.contains(name), path_, ": weight_map puts tensor ", q(name), " in ", shard,
                      ", which has no such tensor");
  return file;
}

const SafetensorsTensorInfo& SafetensorsIndex::info(std::string_view name) const { return shard_for(name).info(name); }
Tensor SafetensorsIndex::read(std::string_view name) const { return shard_for(name).read(name); }
Tensor SafetensorsIndex::read_f32(std::string_view name) const { return shard_for(name).read_f32(name); }

void SafetensorsIndex::check_all() const {
  for (const std::string& name : names_) shard_for(name);
}

}  // namespace crucible::checkpoints
