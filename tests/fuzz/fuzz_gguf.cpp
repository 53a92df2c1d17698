// tests/fuzz/fuzz_gguf.cpp: libFuzzer target for checkpoints/gguf_reader (parse, read, re-encode).
//
// Invariant: on any bytes, GgufFile::from_bytes() either validates the file or throws
// crucible::Error (never crashes, never throws anything else). Once a file is accepted
// nothing may throw: every tensor's bytes lie inside the input, F32/F16/BF16/Q8_0
// tensors decode with read_f32(), and re-encoding the metadata and tensors with
// GgufWriter (when they are in the writer's domain: alignment 8..4096, named tensors,
// keys <= 65535 bytes) gives a file that parses to the same metadata, tensor infos and bytes.
// Seeds (tests/fuzz/corpus/gguf/) were written by GgufWriter / export_gguf().
// Build (from the repository root):
//   clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -I. tests/fuzz/fuzz_gguf.cpp
//           checkpoints/gguf_format.cpp checkpoints/gguf_reader.cpp checkpoints/gguf_writer.cpp core/*.cpp -o fuzz_gguf
// Reference: reference/checkpoint_formats.md §4.1; https://llvm.org/docs/LibFuzzer.html
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>

#include "checkpoints/gguf_reader.h"
#include "checkpoints/gguf_writer.h"
#include "core/error.h"

namespace {

namespace ck = crucible::checkpoints;

[[noreturn]] void die(const char* what, const std::string& detail) {
  std::fprintf(stderr, "fuzz_gguf: %s\n%s\n", what, detail.c_str());
  std::abort();
}

bool writer_can_encode(const ck::GgufFile& f) {
  if (f.alignment() < 8 || f.alignment() > 4096) return false;  // huge alignments would only test memory
  for (const auto& [k, v] : f.kvs())
    if (k.size() > 65535) return false;
  for (const ck::GgufTensorInfo& t : f.tensors())
    if (t.name.empty()) return false;
  return true;
}

void check_accepted(const ck::GgufFile& f, std::size_t size) {
  for (const ck::GgufTensorInfo& t : f.tensors()) {
    const auto bytes = f.tensor_bytes(t.name);
    if (bytes.size() != t.nbytes || f.data_offset() + t.offset + t.nbytes > size) die("tensor outside the input", t.name);
    if (t.type == ck::GgmlType::F32 || t.type == ck::GgmlType::F16 || t.type == ck::GgmlType::BF16 ||
        t.type == ck::GgmlType::Q8_0) {
      if (f.read_f32(t.name).size() != static_cast<std::size_t>(t.numel())) die("read_f32 size", t.name);
    }
  }
  if (!writer_can_encode(f)) return;
  ck::GgufWriter w(f.alignment());
  for (const auto& [k, v] : f.kvs())
    if (k != "general.alignment") w.set(k, v);
  for (const ck::GgufTensorInfo& t : f.tensors()) {
    const auto bytes = f.tensor_bytes(t.name);
    w.add_tensor(t.name, t.ne, t.type, [bytes] { return std::vector<std::uint8_t>(bytes.begin(), bytes.end()); });
  }
  const std::string encoded = w.encode();
  const ck::GgufFile back = ck::GgufFile::from_bytes(encoded, "re-encoded");
  if (back.kvs().size() != f.kvs().size() + (f.find("general.alignment") ? 0 : 1))
    die("re-encoding changed the metadata count", encoded);
  for (const auto& [k, v] : f.kvs()) {
    const ck::GgufValue* b = back.find(k);
    if (!b || !(*b == v)) die("re-encoding changed a metadata value", k);
  }
  if (back.tensors().size() != f.tensors().size()) die("re-encoding changed the tensor count", encoded);
  for (std::size_t i = 0; i < f.tensors().size(); ++i) {
    const ck::GgufTensorInfo &a = f.tensors()[i], &b = back.tensors()[i];
    if (a.name != b.name || a.ne != b.ne || a.type != b.type || a.offset != b.offset || a.nbytes != b.nbytes)
      die("re-encoding changed a tensor info", a.name);
    const auto x = f.tensor_bytes(a.name), y = back.tensor_bytes(b.name);
    if (x.size() != y.size() || (x.size() && std::memcmp(x.data(), y.data(), x.size()) != 0))
      die("re-encoding changed tensor bytes", a.name);
  }
  if (w.encode() != encoded) die("encoding is not deterministic", encoded);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::optional<ck::GgufFile> file;
  try {
    file.emplace(ck::GgufFile::from_bytes(std::string(reinterpret_cast<const char*>(data), size), "fuzz"));
  } catch (const crucible::Error&) {
    return 0;  // rejected input: the expected outcome for most mutations
  }
  try {
    check_accepted(*file, size);
  } catch (const crucible::Error& e) {
    die("an accepted file failed to read or re-encode", e.what());
  }
  return 0;
}
