// checkpoints/h5_bundle.h: named tensors + string attributes in one HDF5 file.
//
// The storage layer of every crucible checkpoint (model files and training state).
// Datasets are chunked with the Fletcher-32 filter, so damage is detected on read;
// the file is written to "<path>.tmp", fsynced and renamed, so `path` always holds
// a complete earlier file or the complete new one. The last attribute written is
// "complete" = "1": a file without it was cut short.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace crucible::checkpoints {

struct H5Bundle {
  std::vector<std::pair<std::string, Tensor>> tensors;      // "weights/model.norm.weight" -> tensor
  std::vector<std::pair<std::string, std::string>> attrs;   // root attributes
};

// Supported tensor dtypes: F32, BF16 (stored as u16), F64, I64, I32, U8.
void write_h5_bundle(const std::string& path, const H5Bundle& bundle);

class H5Reader {
 public:
  explicit H5Reader(const std::string& path);  // errors name the path (missing, not HDF5, damaged)
  ~H5Reader();
  H5Reader(const H5Reader&) = delete;
  H5Reader& operator=(const H5Reader&) = delete;

  const std::string& path() const { return path_; }
  bool has_attr(const std::string& name) const;
  std::string attr(const std::string& name) const;  // error naming the file when absent
  bool has(const std::string& dataset) const;
  Shape shape(const std::string& dataset) const;
  // Reads a dataset into `dst` (shape and dtype must match); checksum failures are
  // errors naming the dataset.
  void read(const std::string& dataset, Tensor& dst) const;
  // Reads a dataset in whatever type it is stored (checksum verification).
  void verify(const std::string& dataset) const;
  // Dataset names directly under a group ("weights").
  std::vector<std::string> list(const std::string& group) const;
  // True when the writer finished the file (the "complete" attribute).
  bool complete() const;

 private:
  std::string path_;
  long long file_ = -1;  // hid_t
};

}  // namespace crucible::checkpoints
