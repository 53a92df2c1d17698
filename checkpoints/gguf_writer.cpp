// checkpoints/gguf_writer.cpp: GGUF v3 serialization.
//
// Invariant: every file written here parses with ggml's gguf reader (and GgufFile):
// unique keys and tensor names, general.alignment a u32 power of two, tensor offsets
// equal to the running sum of sizes padded to the alignment, data section aligned,
// zero padding after every tensor. The target path is replaced by rename after fsync.
// Reference: ggml docs/gguf.md, src/gguf.cpp (gguf_write_to_buf); checkpoint_formats.md §4.
#include "checkpoints/gguf_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <type_traits>
#include <unordered_set>

#include "core/error.h"

namespace crucible::checkpoints {

namespace {

// Appends little-endian encodings to a byte string.
struct Encoder {
  std::string out;
  template <typename T>
  void put(T v) {
    static_assert(std::is_trivially_copyable_v<T>);
    char b[sizeof(T)];
    std::memcpy(b, &v, sizeof(T));  // NOTE: little-endian hosts only, as the format
    out.append(b, sizeof(T));
  }
  void str(std::string_view s) {
    put<std::uint64_t>(s.size());
    out.append(s.data(), s.size());
  }
  void value(const GgufValue& v) {
    switch (v.type()) {
      case GgufType::U8: put<std::uint8_t>(static_cast<std::uint8_t>(v.as_uint())); break;
      case GgufType::I8: put<std::int8_t>(static_cast<std::int8_t>(v.as_int())); break;
      case GgufType::U16: put<std::uint16_t>(static_cast<std::uint16_t>(v.as_uint())); break;
      case GgufType::I16: put<std::int16_t>(static_cast<std::int16_t>(v.as_int())); break;
      case GgufType::U32: put<std::uint32_t>(static_cast<std::uint32_t>(v.as_uint())); break;
      case GgufType::I32: put<std::int32_t>(static_cast<std::int32_t>(v.as_int())); break;
      case GgufType::F32: put<float>(static_cast<float>(v.as_float())); break;
      case GgufType::Bool: put<std::uint8_t>(v.as_bool() ? 1 : 0); break;
      case GgufType::String: str(v.as_string()); break;
      case GgufType::U64: put<std::uint64_t>(v.as_uint()); break;
      case GgufType::I64: put<std::int64_t>(v.as_int()); break;
      case GgufType::F64: put<double>(v.as_float()); break;
      case GgufType::Array:
        put<std::uint32_t>(static_cast<std::uint32_t>(v.elem_type()));
        put<std::uint64_t>(v.items().size());
        for (const GgufValue& it : v.items()) value(it);
        break;
    }
  }
};

// Writes to "<path>.tmp"; commit() fsyncs and renames it over the path.
class AtomicFile {
 public:
  explicit AtomicFile(std::string path) : path_(std::move(path)), tmp_(path_ + ".tmp") {
    f_ = std::fopen(tmp_.c_str(), "wb");
    CRUCIBLE_USER_CHECK(f_ != nullptr, "cannot create ", tmp_, ": ", std::strerror(errno),
                        " (check that the directory exists and is writable)");
  }
  ~AtomicFile() {
    if (f_) {
      std::fclose(f_);
      std::remove(tmp_.c_str());
    }
  }
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void put(const void* p, std::size_t n) {
    CRUCIBLE_USER_CHECK(n == 0 || std::fwrite(p, 1, n, f_) == n, "write to ", tmp_, " failed: ", std::strerror(errno),
                        " (disk full?)");
  }
  void commit() {
    CRUCIBLE_USER_CHECK(std::fflush(f_) == 0 && ::fsync(fileno(f_)) == 0, tmp_, ": flush failed: ",
                        std::strerror(errno));
    std::FILE* f = f_;
    f_ = nullptr;
    CRUCIBLE_USER_CHECK(std::fclose(f) == 0, tmp_, ": close failed: ", std::strerror(errno));
    if (::rename(tmp_.c_str(), path_.c_str()) != 0) {
      const int err = errno;
      std::remove(tmp_.c_str());
      CRUCIBLE_FAIL("cannot rename ", tmp_, " to ", path_, ": ", std::strerror(err));
    }
    // NOTE: best effort; some filesystems refuse fsync on a directory.
    std::string dir = std::filesystem::path(path_).parent_path().string();
    if (dir.empty()) dir = ".";
    if (int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY); dfd >= 0) {
      ::fsync(dfd);
      ::close(dfd);
    }
  }

 private:
  std::string path_, tmp_;
  std::FILE* f_ = nullptr;
};

struct StringSink {
  std::string out;
  void put(const void* p, std::size_t n) { out.append(static_cast<const char*>(p), n); }
};

}  // namespace

GgufWriter::GgufWriter(std::uint32_t alignment) : alignment_(alignment) {
  CRUCIBLE_CHECK(alignment >= 8 && alignment <= (1u << 20) && (alignment & (alignment - 1)) == 0,
                 "GGUF alignment must be a power of two in [8, 1 MiB], got ", alignment);
}

void GgufWriter::set(std::string key, GgufValue value) {
  CRUCIBLE_CHECK(!key.empty() && key.size() <= 65535, "GGUF keys are 1..65535 bytes");
  CRUCIBLE_CHECK(key != "general.alignment", "general.alignment is set by the GgufWriter constructor");
  CRUCIBLE_CHECK(find(key) == nullptr, "GGUF key '", key, "' set twice");
  kvs_.emplace_back(std::move(key), std::move(value));
}

const GgufValue* GgufWriter::find(std::string_view key) const {
  for (const auto& [k, v] : kvs_)
    if (k == key) return &v;
  return nullptr;
}

void GgufWriter::add_tensor(std::string name, std::vector<std::int64_t> ne, GgmlType type, GgufTensorBytes bytes) {
  CRUCIBLE_CHECK(!name.empty() && name.size() <= kGgufMaxTensorName, "GGUF tensor name '", name,
                 "' must be 1..", kGgufMaxTensorName, " bytes");
  for (const GgufTensorEntry& t : tensors_) CRUCIBLE_CHECK(t.name != name, "GGUF tensor '", name, "' added twice");
  for (std::int64_t d : ne) CRUCIBLE_CHECK(d >= 0, "GGUF tensor '", name, "' has a negative dim");
  ggml_nbytes(type, ne);  // checks the rank and the block divisibility
  tensors_.push_back({std::move(name), std::move(ne), type, std::move(bytes)});
}

template <typename Sink>
void GgufWriter::emit(Sink& sink) const {
  Encoder h;
  h.put<std::uint32_t>(kGgufMagic);
  h.put<std::uint32_t>(kGgufVersion);
  h.put<std::uint64_t>(tensors_.size());
  h.put<std::uint64_t>(kvs_.size() + 1);
  h.str("general.alignment");
  h.put<std::uint32_t>(static_cast<std::uint32_t>(GgufType::U32));
  h.put<std::uint32_t>(alignment_);
  for (const auto& [k, v] : kvs_) {
    h.str(k);
    h.put<std::uint32_t>(static_cast<std::uint32_t>(v.type()));
    h.value(v);
  }
  std::vector<std::uint64_t> sizes;
  std::uint64_t offset = 0;
  for (const GgufTensorEntry& t : tensors_) {
    h.str(t.name);
    h.put<std::uint32_t>(static_cast<std::uint32_t>(t.ne.size()));
    for (std::int64_t d : t.ne) h.put<std::uint64_t>(static_cast<std::uint64_t>(d));
    h.put<std::uint32_t>(static_cast<std::uint32_t>(t.type));
    h.put<std::uint64_t>(offset);
    sizes.push_back(ggml_nbytes(t.type, t.ne));
    offset += gguf_pad(sizes.back(), alignment_);
  }
  h.out.resize(gguf_pad(h.out.size(), alignment_), '\0');
  sink.put(h.out.data(), h.out.size());
  const std::string zeros(alignment_, '\0');
  for (std::size_t i = 0; i < tensors_.size(); ++i) {
    const std::vector<std::uint8_t> data = tensors_[i].bytes();
    CRUCIBLE_CHECK(data.size() == sizes[i], "GGUF tensor '", tensors_[i].name, "' produced ", data.size(),
                   " bytes, its type and shape need ", sizes[i]);
    sink.put(data.data(), data.size());
    sink.put(zeros.data(), gguf_pad(sizes[i], alignment_) - sizes[i]);
  }
}

std::string GgufWriter::encode() const {
  StringSink sink;
  emit(sink);
  return std::move(sink.out);
}

void GgufWriter::write(const std::string& path) const {
  AtomicFile f(path);
  emit(f);
  f.commit();
}

}  // namespace crucible::checkpoints
