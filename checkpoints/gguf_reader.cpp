// checkpoints/gguf_reader.cpp: GGUF parsing and validation.
//
// Invariant: every read is bounds-checked against the bytes left before it happens,
// and every count is checked against the smallest encoding of its elements before
// anything is allocated, so hostile input cannot crash, over-allocate or loop long;
// the only exception thrown is crucible::Error.
// Reference: ggml src/gguf.cpp (gguf_init_from_file_impl), docs/gguf.md;
// reference/checkpoint_formats.md §4.1.
#include "checkpoints/gguf_reader.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <limits>

#include "core/error.h"
#include "core/numerics.h"

namespace crucible::checkpoints {

// A read-only mapping or an owned buffer.
struct GgufFile::Bytes {
  std::string owned;
  void* map = nullptr;
  std::size_t map_size = 0;
  const std::uint8_t* data() const {
    return map ? static_cast<const std::uint8_t*>(map) : reinterpret_cast<const std::uint8_t*>(owned.data());
  }
  std::size_t size() const { return map ? map_size : owned.size(); }
  ~Bytes() {
    if (map) ::munmap(map, map_size);
  }
};

namespace {

class Cursor {
 public:
  Cursor(const std::uint8_t* p, std::size_t n, const std::string& source) : p_(p), n_(n), source_(source) {}

  std::size_t pos() const { return pos_; }
  std::size_t left() const { return n_ - pos_; }

  [[noreturn]] void fail(std::string_view what) const {
    CRUCIBLE_FAIL(source_, ": not a valid GGUF file: ", what, " (at byte ", pos_, " of ", n_, ")");
  }

  void need(std::size_t k, std::string_view what) const {
    if (k > left()) fail(detail::concat("truncated while reading ", what, " (", k, " bytes needed, ", left(), " left)"));
  }

  template <typename T>
  T get(std::string_view what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, p_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }

  std::string str(std::string_view what) {
    const auto len = get<std::uint64_t>(what);
    if (len > left()) fail(detail::concat(what, " claims ", len, " bytes but only ", left(), " are left"));
    std::string s(reinterpret_cast<const char*>(p_ + pos_), static_cast<std::size_t>(len));
    pos_ += static_cast<std::size_t>(len);
    return s;
  }

 private:
  const std::uint8_t* p_;
  std::size_t n_;
  std::size_t pos_ = 0;
  const std::string& source_;
};

GgufValue read_scalar(Cursor& c, GgufType t, const std::string& key) {
  const std::string what = "the value of '" + key + "'";
  switch (t) {
    case GgufType::U8: return GgufValue::u8(c.get<std::uint8_t>(what));
    case GgufType::I8: return GgufValue::i8(c.get<std::int8_t>(what));
    case GgufType::U16: return GgufValue::u16(c.get<std::uint16_t>(what));
    case GgufType::I16: return GgufValue::i16(c.get<std::int16_t>(what));
    case GgufType::U32: return GgufValue::u32(c.get<std::uint32_t>(what));
    case GgufType::I32: return GgufValue::i32(c.get<std::int32_t>(what));
    case GgufType::F32: return GgufValue::f32(c.get<float>(what));
    case GgufType::U64: return GgufValue::u64(c.get<std::uint64_t>(what));
    case GgufType::I64: return GgufValue::i64(c.get<std::int64_t>(what));
    case GgufType::F64: return GgufValue::f64(c.get<double>(what));
    case GgufType::Bool: {
      const auto b = c.get<std::uint8_t>(what);
      if (b > 1) c.fail(detail::concat("key '", key, "': a bool must be 0 or 1, got ", int(b)));
      return GgufValue::boolean(b != 0);
    }
    case GgufType::String: return GgufValue::string(c.str(what));
    case GgufType::Array: break;
  }
  c.fail(detail::concat("key '", key, "': nested arrays are not supported (ggml rejects them)"));
}

GgufValue read_value(Cursor& c, GgufType t, const std::string& key) {
  if (t != GgufType::Array) return read_scalar(c, t, key);
  const auto raw_elem = c.get<std::uint32_t>("an array element type");
  if (!gguf_type_valid(raw_elem)) c.fail(detail::concat("key '", key, "': invalid array element type ", raw_elem));
  const auto elem = static_cast<GgufType>(raw_elem);
  if (elem == GgufType::Array) c.fail(detail::concat("key '", key, "': nested arrays are not supported (ggml rejects them)"));
  const auto n = c.get<std::uint64_t>("an array length");
  const std::size_t min_size = elem == GgufType::String ? 8 : gguf_scalar_size(elem);
  if (n > c.left() / min_size)
    c.fail(detail::concat("key '", key, "': array of ", n, " ", gguf_type_name(elem), " cannot fit in the ", c.left(),
                          " bytes left"));
  std::vector<GgufValue> items;
  items.reserve(static_cast<std::size_t>(n));
  for (std::uint64_t i = 0; i < n; ++i) items.push_back(read_scalar(c, elem, key));
  return GgufValue::array(elem, std::move(items));
}

}  // namespace

std::int64_t GgufTensorInfo::numel() const {
  std::int64_t n = 1;
  for (std::int64_t d : ne) n *= d;
  return n;
}

GgufFile::GgufFile(std::shared_ptr<const Bytes> bytes, std::string source)
    : bytes_(std::move(bytes)), source_(std::move(source)) {
  parse();
}

GgufFile GgufFile::from_bytes(std::string bytes, std::string source) {
  auto b = std::make_shared<Bytes>();
  b->owned = std::move(bytes);
  return GgufFile(std::move(b), std::move(source));
}

GgufFile GgufFile::open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  CRUCIBLE_USER_CHECK(fd >= 0, "cannot open GGUF file ", path, ": ", std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    CRUCIBLE_FAIL("cannot stat ", path, ": ", std::strerror(err));
  }
  auto b = std::make_shared<Bytes>();
  if (st.st_size > 0) {
    void* m = ::mmap(nullptr, static_cast<std::size_t>(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
    if (m == MAP_FAILED) {
      const int err = errno;
      ::close(fd);
      CRUCIBLE_FAIL("cannot map ", path, ": ", std::strerror(err));
    }
    b->map = m;
    b->map_size = static_cast<std::size_t>(st.st_size);
  }
  ::close(fd);
  return GgufFile(std::move(b), path);
}

void GgufFile::parse() {
  Cursor c(bytes_->data(), bytes_->size(), source_);
  const auto magic = c.get<std::uint32_t>("the magic");
  if (magic != kGgufMagic) c.fail("bad magic (expected the bytes 'GGUF')");
  version_ = c.get<std::uint32_t>("the version");
  if (version_ == 1) c.fail("GGUF v1 is not supported (convert it with a current llama.cpp)");
  if (version_ == 0 || version_ > kGgufVersion)
    c.fail(detail::concat("unsupported GGUF version ", version_, " (this reader knows 2 and 3)"));
  const auto n_tensors = c.get<std::uint64_t>("the tensor count");
  const auto n_kv = c.get<std::uint64_t>("the metadata count");
  // Smallest encodings: a KV is a key length (8) + a type (4) + a 1-byte value; a
  // tensor info is a name length (8) + n_dims (4) + type (4) + offset (8).
  if (n_kv > c.left() / 13) c.fail(detail::concat("metadata count ", n_kv, " cannot fit in the file"));
  if (n_tensors > c.left() / 24) c.fail(detail::concat("tensor count ", n_tensors, " cannot fit in the file"));

  for (std::uint64_t i = 0; i < n_kv; ++i) {
    std::string key = c.str(detail::concat("key #", i));
    if (key.empty()) c.fail(detail::concat("key #", i, " is empty"));
    if (kv_index_.count(key)) c.fail(detail::concat("duplicate key '", key, "'"));
    const auto raw = c.get<std::uint32_t>("a value type");
    if (!gguf_type_valid(raw)) c.fail(detail::concat("key '", key, "' has invalid value type ", raw));
    GgufValue v = read_value(c, static_cast<GgufType>(raw), key);
    kv_index_.emplace(key, kvs_.size());
    kvs_.emplace_back(std::move(key), std::move(v));
  }

  if (const GgufValue* a = find("general.alignment")) {
    if (a->type() != GgufType::U32)
      c.fail(detail::concat("general.alignment must be u32, got ", gguf_type_name(a->type())));
    const std::uint64_t al = a->as_uint();
    if (al == 0 || (al & (al - 1)) != 0) c.fail(detail::concat("general.alignment ", al, " is not a power of two"));
    alignment_ = static_cast<std::uint32_t>(al);
  }

  std::uint64_t expected_offset = 0;
  for (std::uint64_t i = 0; i < n_tensors; ++i) {
    GgufTensorInfo t;
    t.name = c.str(detail::concat("the name of tensor #", i));
    if (t.name.size() > kGgufMaxTensorName)
      c.fail(detail::concat("tensor name '", t.name.substr(0, 80), "' is ", t.name.size(), " bytes (at most ",
                            kGgufMaxTensorName, ")"));
    if (tensor_index_.count(t.name)) c.fail(detail::concat("duplicate tensor name '", t.name, "'"));
    const auto n_dims = c.get<std::uint32_t>("n_dims");
    if (n_dims > static_cast<std::uint32_t>(kGgufMaxDims))
      c.fail(detail::concat("tensor '", t.name, "' has ", n_dims, " dims (at most ", kGgufMaxDims, ")"));
    std::int64_t numel = 1;
    bool overflow = false;
    for (std::uint32_t d = 0; d < n_dims; ++d) {
      const auto ne = c.get<std::int64_t>("a dim");
      if (ne < 0) c.fail(detail::concat("tensor '", t.name, "' dim ", d, " is negative (", ne, ")"));
      if (ne > 1 && numel > std::numeric_limits<std::int64_t>::max() / ne) overflow = true;
      numel = overflow ? numel : numel * ne;
      t.ne.push_back(ne);
    }
    if (overflow) c.fail(detail::concat("tensor '", t.name, "' has more elements than int64 holds"));
    if (t.ne.empty()) t.ne.push_back(1);
    const auto raw_type = c.get<std::uint32_t>("a tensor type");
    const auto traits = ggml_type_traits(raw_type);
    if (!traits) c.fail(detail::concat("tensor '", t.name, "' has unknown ggml type ", raw_type));
    t.type = static_cast<GgmlType>(raw_type);
    if (t.ne[0] % traits->block != 0)
      c.fail(detail::concat("tensor '", t.name, "' (", traits->name, ") has ne[0] = ", t.ne[0],
                            ", not a multiple of the block size ", traits->block));
    const std::uint64_t blocks = static_cast<std::uint64_t>(numel / traits->block);
    if (blocks > std::numeric_limits<std::uint64_t>::max() / 2 / static_cast<std::uint64_t>(traits->bytes))
      c.fail(detail::concat("tensor '", t.name, "' is too large"));
    t.nbytes = blocks * static_cast<std::uint64_t>(traits->bytes);
    t.offset = c.get<std::uint64_t>("a tensor offset");
    if (t.offset != expected_offset)
      c.fail(detail::concat("tensor '", t.name, "' has offset ", t.offset, ", expected ", expected_offset,
                            " (tensors must be packed in order, each padded to ", alignment_, " bytes)"));
    if (t.nbytes > bytes_->size()) c.fail(detail::concat("tensor '", t.name, "' is larger than the file"));
    expected_offset += gguf_pad(t.nbytes, alignment_);
    tensor_index_.emplace(t.name, tensors_.size());
    tensors_.push_back(std::move(t));
  }

  data_offset_ = gguf_pad(c.pos(), alignment_);
  for (const GgufTensorInfo& t : tensors_) {
    const std::uint64_t end = data_offset_ + t.offset + t.nbytes;
    if (end > bytes_->size())
      CRUCIBLE_FAIL(source_, ": not a valid GGUF file: truncated: tensor '", t.name, "' ends at byte ", end,
                    " but the file has ", bytes_->size(), " bytes");
  }
}

const GgufValue* GgufFile::find(std::string_view key) const {
  auto it = kv_index_.find(std::string(key));
  return it == kv_index_.end() ? nullptr : &kvs_[it->second].second;
}

const GgufValue& GgufFile::at(std::string_view key) const {
  const GgufValue* v = find(key);
  CRUCIBLE_USER_CHECK(v != nullptr, source_, ": GGUF key '", key, "' is missing");
  return *v;
}

const GgufTensorInfo* GgufFile::find_tensor(std::string_view name) const {
  auto it = tensor_index_.find(std::string(name));
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

const GgufTensorInfo& GgufFile::tensor(std::string_view name) const {
  const GgufTensorInfo* t = find_tensor(name);
  CRUCIBLE_USER_CHECK(t != nullptr, source_, ": no tensor '", name, "' in the GGUF file");
  return *t;
}

std::span<const std::uint8_t> GgufFile::tensor_bytes(std::string_view name) const {
  const GgufTensorInfo& t = tensor(name);
  return {bytes_->data() + data_offset_ + t.offset, static_cast<std::size_t>(t.nbytes)};
}

std::vector<float> GgufFile::read_f32(std::string_view name) const {
  const GgufTensorInfo& t = tensor(name);
  const auto bytes = tensor_bytes(name);
  const auto n = static_cast<std::size_t>(t.numel());
  std::vector<float> out(n);
  switch (t.type) {
    case GgmlType::F32: if (n) std::memcpy(out.data(), bytes.data(), n * 4); break;
    case GgmlType::F16:
    case GgmlType::BF16:
      for (std::size_t i = 0; i < n; ++i) {
        std::uint16_t h;
        std::memcpy(&h, bytes.data() + 2 * i, 2);
        out[i] = t.type == GgmlType::F16 ? f16_to_f32(h) : bf16_to_f32(h);
      }
      break;
    case GgmlType::Q8_0: dequantize_q8_0(bytes.data(), static_cast<std::int64_t>(n), out.data()); break;
    default:
      CRUCIBLE_FAIL(source_, ": tensor '", name, "' is ", ggml_traits(t.type).name,
                    "; read_f32 decodes f32, f16, bf16 and q8_0 only");
  }
  return out;
}

}  // namespace crucible::checkpoints
