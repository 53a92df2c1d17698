// tests/fuzz/fuzz_safetensors.cpp: libFuzzer target for checkpoints/safetensors (parse, read, re-encode).
//
// Invariant: on any bytes, SafetensorsFile::from_bytes() either validates the file
// or throws crucible::Error (never crashes, never throws anything else). Once a
// file is accepted nothing may throw: every tensor reads with read_f32(), and with
// read() unless its dtype has no crucible DType (I16, I8, BOOL); re-encoding the
// tensors gives a file that parses to the same names, dtypes, shapes, bytes and
// metadata, and re-encodes to the same bytes.
// Seeds (tests/fuzz/corpus/safetensors/) were written by write_safetensors().
// Build (from the repository root):
//   clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -I. tests/fuzz/fuzz_safetensors.cpp
//           checkpoints/safetensors.cpp checkpoints/safetensors_writer.cpp core/*.cpp -o fuzz_safetensors
// Reference: reference/checkpoint_formats.md §1; https://llvm.org/docs/LibFuzzer.html
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <utility>

#include "checkpoints/safetensors.h"
#include "core/error.h"

namespace {

namespace ck = crucible::checkpoints;

[[noreturn]] void die(const char* what, const std::string& detail) {
  std::fprintf(stderr, "fuzz_safetensors: %s\n%s\n", what, detail.c_str());
  std::abort();
}

// The metadata a re-encoded file must carry: "format": "pt" first unless present.
ck::SafetensorsMetadata expected_metadata(const ck::SafetensorsFile& f) {
  ck::SafetensorsMetadata m = f.metadata();
  if (!f.metadata_value("format")) m.insert(m.begin(), {"format", "pt"});
  return m;
}

void check_accepted(const ck::SafetensorsFile& f) {
  ck::NamedTensors tensors;
  bool encodable = true;
  for (const std::string& name : f.names()) {
    const ck::SafetensorsTensorInfo& info = f.info(name);
    if (f.bytes(name).size() != info.nbytes()) die("bytes() size differs from data_offsets", name);
    const crucible::Tensor t32 = f.read_f32(name);
    if (t32.numel() != info.shape.numel()) die("read_f32 has the wrong element count", name);
    if (!ck::to_crucible_dtype(info.dtype) || name.empty()) {
      encodable = false;  // the writer holds only crucible DTypes and non-empty names
      continue;
    }
    crucible::Tensor t = f.read(name);
    if (t.nbytes() != info.nbytes() || (t.nbytes() && std::memcmp(t.raw(), f.bytes(name).data(), t.nbytes())))
      die("read() differs from the stored bytes", name);
    tensors.emplace_back(name, std::move(t));
  }
  if (!encodable) return;
  const std::string encoded = ck::encode_safetensors(tensors, f.metadata());
  const ck::SafetensorsFile back = ck::SafetensorsFile::from_bytes(encoded, "re-encoded");
  if (back.names() != f.names()) die("re-encoding changed the names or their order", encoded);
  if (back.metadata() != expected_metadata(f)) die("re-encoding changed the metadata", encoded);
  if (back.data_offset() % 8 != 0) die("re-encoded data section is not 8-byte aligned", encoded);
  for (const std::string& name : f.names()) {
    const auto a = f.bytes(name), b = back.bytes(name);
    if (f.info(name).dtype != back.info(name).dtype || !(f.info(name).shape == back.info(name).shape) ||
        a.size() != b.size() || (a.size() && std::memcmp(a.data(), b.data(), a.size())))
      die("re-encoding changed a tensor", name);
  }
  ck::NamedTensors again;
  for (const std::string& name : back.names()) again.emplace_back(name, back.read(name));
  if (ck::encode_safetensors(again, back.metadata()) != encoded) die("encoding is not a fixed point", encoded);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::optional<ck::SafetensorsFile> file;
  try {
    file.emplace(ck::SafetensorsFile::from_bytes(std::string(reinterpret_cast<const char*>(data), size), "fuzz"));
  } catch (const crucible::Error&) {
    return 0;  // rejected input: the expected outcome for most mutations
  }
  try {
    check_accepted(*file);
  } catch (const crucible::Error& e) {
    die("an accepted file failed to read or re-encode", e.what());
  }
  return 0;
}
