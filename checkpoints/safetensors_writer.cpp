// checkpoints/safetensors_writer.cpp: safetensors writing (one file; shards + index).
//
// Invariant: every file written here opens in SafetensorsFile and in the reference
// reader: a space-padded header whose size is a multiple of 8, tensors that tile the
// data section, each starting at a multiple of its element size. A target path is
// replaced by rename after fsync, so it never holds a half-written file.
// Reference: reference/checkpoint_formats.md §1 (safetensors serialize(),
// huggingface_hub split_torch_state_dict_into_shards and its index layout).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <unordered_set>

#include "checkpoints/safetensors.h"
#include "core/error.h"

namespace crucible::checkpoints {

namespace {

namespace fs = std::filesystem;

// The header and the data order of one file.
struct FilePlan {
  std::string size_and_header;     // 8-byte little-endian size + padded JSON
  std::vector<std::size_t> order;  // indices into the tensors, in data order
  std::uint64_t data_bytes = 0;
};

void check_names(const NamedTensors& tensors, const std::string& where) {
  std::unordered_set<std::string_view> seen;
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const auto& [name, t] = tensors[i];
    CRUCIBLE_USER_CHECK(!name.empty(), where, ": tensor #", i, " has an empty name");
    try {
      json::quote(name);  // throws on invalid UTF-8
    } catch (const Error& e) {
      CRUCIBLE_FAIL(where, ": the name of tensor #", i, " is not valid UTF-8 (", e.what(), ")");
    }
    CRUCIBLE_USER_CHECK(name != "__metadata__", where, ": a tensor cannot be named \"__metadata__\"");
    CRUCIBLE_USER_CHECK(seen.insert(name).second, where, ": two tensors are named ", json::quote(name));
    CRUCIBLE_USER_CHECK(t.defined(), where, ": tensor ", json::quote(name), " is undefined (no storage)");
  }
}

FilePlan plan_file(const NamedTensors& tensors, const SafetensorsMetadata& metadata, const std::string& where) {
  check_names(tensors, where);
  FilePlan plan;
  // Descending element size, stable: with the data section 8-byte aligned, every
  // tensor then starts at a multiple of its element size.
  plan.order.resize(tensors.size());
  for (std::size_t i = 0; i < tensors.size(); ++i) plan.order[i] = i;
  std::stable_sort(plan.order.begin(), plan.order.end(), [&](std::size_t a, std::size_t b) {
    return dtype_size(tensors[a].second.dtype()) > dtype_size(tensors[b].second.dtype());
  });
  std::vector<std::uint64_t> begin(tensors.size());
  for (std::size_t i : plan.order) {
    begin[i] = plan.data_bytes;
    plan.data_bytes += tensors[i].second.nbytes();
  }

  json::Object meta;
  const bool has_format = std::any_of(metadata.begin(), metadata.end(), [](const auto& kv) { return kv.first == "format"; });
  if (!has_format) meta.emplace_back("format", json::Value("pt"));  // transformers checks it
  std::unordered_set<std::string_view> meta_keys;
  for (const auto& [k, v] : metadata) {
    CRUCIBLE_USER_CHECK(meta_keys.insert(k).second, where, ": metadata key ", json::quote(k), " given twice");
    meta.emplace_back(k, json::Value(v));
  }
  json::Object root;
  root.reserve(tensors.size() + 1);
  root.emplace_back("__metadata__", json::Value(std::move(meta)));
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i].second;
    json::Array shape;
    for (std::int64_t d : t.shape()) shape.emplace_back(d);
    json::Object entry;
    entry.emplace_back("dtype", json::Value(safetensors_dtype_name(to_safetensors_dtype(t.dtype()))));
    entry.emplace_back("shape", json::Value(std::move(shape)));
    entry.emplace_back("data_offsets", json::Value(json::Array{json::Value(begin[i]), json::Value(begin[i] + t.nbytes())}));
    root.emplace_back(tensors[i].first, json::Value(std::move(entry)));
  }
  std::string header = json::dump(json::Value(std::move(root)));
  header.append((8 - header.size() % 8) % 8, ' ');
  CRUCIBLE_USER_CHECK(header.size() <= SafetensorsFile::kMaxHeaderBytes, where, ": the header would be ",
                      header.size(), " bytes, over the ", SafetensorsFile::kMaxHeaderBytes,
                      "-byte limit of safetensors readers: split the tensors into shards");
  const std::uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) plan.size_and_header += static_cast<char>((n >> (8 * i)) & 0xff);
  plan.size_and_header += header;
  return plan;
}

// "<path>.tmp", written, fsynced and renamed over <path> by commit(); removed when
// dropped before that.
class AtomicFile {
 public:
  explicit AtomicFile(std::string path) : path_(std::move(path)), tmp_(path_ + ".tmp") {
    fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    CRUCIBLE_USER_CHECK(fd_ >= 0, tmp_, ": cannot create: ", std::strerror(errno));
  }
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  ~AtomicFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_) ::unlink(tmp_.c_str());
  }

  void write(const void* data, std::size_t n) {
    const char* p = static_cast<const char*>(data);
    while (n > 0) {
      const ssize_t w = ::write(fd_, p, std::min<std::size_t>(n, std::size_t{1} << 30));
      if (w < 0 && errno == EINTR) continue;
      CRUCIBLE_USER_CHECK(w > 0, tmp_, ": write failed after ", written_, " bytes: ",
                          w < 0 ? std::strerror(errno) : "no progress");
      p += w, n -= static_cast<std::size_t>(w), written_ += static_cast<std::uint64_t>(w);
    }
  }

  void commit() {
    CRUCIBLE_USER_CHECK(::fsync(fd_) == 0, tmp_, ": fsync failed: ", std::strerror(errno));
    const int rc = ::close(fd_);
    fd_ = -1;
    CRUCIBLE_USER_CHECK(rc == 0, tmp_, ": close failed: ", std::strerror(errno));
    CRUCIBLE_USER_CHECK(::rename(tmp_.c_str(), path_.c_str()) == 0, "cannot rename ", tmp_, " to ", path_, ": ",
                        std::strerror(errno));
    committed_ = true;
    // NOTE: the directory entry is durable only once the directory is fsynced;
    // best effort, as some filesystems refuse fsync on a directory.
    std::string dir = fs::path(path_).parent_path().string();
    const int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
      ::fsync(dfd);
      ::close(dfd);
    }
  }

 private:
  std::string path_, tmp_;
  int fd_ = -1;
  bool committed_ = false;
  std::uint64_t written_ = 0;
};

// model-00001-of-00004.safetensors
std::string shard_name(std::size_t i, std::size_t n) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "model-%05zu-of-%05zu.safetensors", i + 1, n);
  return buf;
}

bool is_shard_name(std::string_view s) {
  constexpr std::string_view kPattern = "model-#####-of-#####.safetensors";
  if (s.size() != kPattern.size()) return false;
  for (std::size_t i = 0; i < s.size(); ++i)
    if (kPattern[i] == '#' ? (s[i] < '0' || s[i] > '9') : s[i] != kPattern[i]) return false;
  return true;
}

}  // namespace

std::string encode_safetensors(const NamedTensors& tensors, const SafetensorsMetadata& metadata) {
  const FilePlan plan = plan_file(tensors, metadata, "safetensors encoding");
  std::string out = plan.size_and_header;
  out.reserve(out.size() + plan.data_bytes);
  for (std::size_t i : plan.order) {
    const Tensor t = on_host(tensors[i].second);
    out.append(static_cast<const char*>(t.raw()), t.nbytes());
  }
  return out;
}

void write_safetensors(const std::string& path, const NamedTensors& tensors, const SafetensorsMetadata& metadata) {
  const FilePlan plan = plan_file(tensors, metadata, path);
  AtomicFile file(path);
  file.write(plan.size_and_header.data(), plan.size_and_header.size());
  for (std::size_t i : plan.order) {
    const Tensor t = on_host(tensors[i].second);
    file.write(t.raw(), t.nbytes());
  }
  file.commit();
}

std::vector<std::string> write_safetensors_sharded(const std::string& dir, const NamedTensors& tensors,
                                                   std::uint64_t max_shard_bytes, const SafetensorsMetadata& metadata) {
  CRUCIBLE_USER_CHECK(max_shard_bytes > 0, dir, ": the shard size cap must be positive");
  check_names(tensors, dir);  // before any file is written
  std::error_code ec;
  fs::create_directories(dir, ec);
  CRUCIBLE_USER_CHECK(!ec && fs::is_directory(dir), dir, ": cannot create the directory: ", ec.message());

  // Greedy in the given order, as huggingface_hub: a new shard when the next
  // tensor would push a non-empty one over the cap.
  std::vector<NamedTensors> shards;
  std::uint64_t current = 0;
  for (const auto& named : tensors) {
    const std::uint64_t nb = named.second.nbytes();
    if (shards.empty() || (current > 0 && current + nb > max_shard_bytes)) {
      shards.emplace_back();
      current = 0;
    }
    shards.back().push_back(named);
    current += nb;
  }
  if (shards.empty()) shards.emplace_back();  // no tensors: one empty file

  std::vector<std::string> written;
  const fs::path root(dir);
  if (shards.size() == 1) {
    write_safetensors((root / SafetensorsIndex::kSingleFile).string(), shards[0], metadata);
    written.push_back(SafetensorsIndex::kSingleFile);
  } else {
    json::Object weight_map;
    weight_map.reserve(tensors.size());
    std::uint64_t total = 0;
    for (std::size_t s = 0; s < shards.size(); ++s) {
      const std::string name = shard_name(s, shards.size());
      write_safetensors((root / name).string(), shards[s], metadata);
      written.push_back(name);
      for (const auto& [tname, t] : shards[s]) {
        weight_map.emplace_back(tname, json::Value(name));
        total += t.nbytes();
      }
    }
    // total_size counts tensor bytes, not file sizes (huggingface_hub).
    json::Object index;
    index.emplace_back("metadata", json::Value(json::Object{{"total_size", json::Value(total)}}));
    index.emplace_back("weight_map", json::Value(std::move(weight_map)));
    const std::string text = json::dump(json::Value(std::move(index)), 2) + "\n";
    AtomicFile file((root / SafetensorsIndex::kIndexFile).string());  // last: shards are complete by now
    file.write(text.data(), text.size());
    file.commit();
    written.push_back(SafetensorsIndex::kIndexFile);
  }

  // Leftovers of an earlier save would shadow or confuse what was just written.
  const std::unordered_set<std::string> keep(written.begin(), written.end());
  std::vector<fs::path> stale;  // collected first: removing while iterating is unspecified
  for (const auto& entry : fs::directory_iterator(root, ec)) {
    const std::string name = entry.path().filename().string();
    const bool ours = name == SafetensorsIndex::kSingleFile || name == SafetensorsIndex::kIndexFile || is_shard_name(name);
    if (ours && !keep.count(name)) stale.push_back(entry.path());
  }
  for (const fs::path& p : stale) fs::remove(p, ec);
  return written;
}

}  // namespace crucible::checkpoints
