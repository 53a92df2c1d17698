// checkpoints/h5_bundle.cpp: HDF5 bundle writer and reader (see h5_bundle.h).
#include "checkpoints/h5_bundle.h"

#include <hdf5.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>

#include "checkpoints/hdf5_check.h"

namespace crucible::checkpoints {

namespace {

class H5Id {
 public:
  H5Id(hid_t id, herr_t (*close)(hid_t)) : id_(id), close_(close) {}
  ~H5Id() {
    if (id_ >= 0) close_(id_);
  }
  H5Id(const H5Id&) = delete;
  H5Id& operator=(const H5Id&) = delete;
  operator hid_t() const { return id_; }

 private:
  hid_t id_;
  herr_t (*close_)(hid_t);
};

hid_t file_type(DType t) {
  switch (t) {
    case DType::F32: return H5T_IEEE_F32LE;
    case DType::F64: return H5T_IEEE_F64LE;
    case DType::BF16: case DType::F16: return H5T_STD_U16LE;
    case DType::I64: return H5T_STD_I64LE;
    case DType::I32: return H5T_STD_I32LE;
    case DType::U8: case DType::E4M3: case DType::E5M2: return H5T_STD_U8LE;
  }
  return H5T_STD_U8LE;
}

hid_t mem_type(DType t) {
  switch (t) {
    case DType::F32: return H5T_NATIVE_FLOAT;
    case DType::F64: return H5T_NATIVE_DOUBLE;
    case DType::BF16: case DType::F16: return H5T_NATIVE_UINT16;
    case DType::I64: return H5T_NATIVE_INT64;
    case DType::I32: return H5T_NATIVE_INT32;
    case DType::U8: case DType::E4M3: case DType::E5M2: return H5T_NATIVE_UINT8;
  }
  return H5T_NATIVE_UINT8;
}

void write_attr(hid_t obj, const std::string& name, const std::string& value) {
  H5Id type(CHECK_HDF5(H5Tcopy(H5T_C_S1)), H5Tclose);
  CHECK_HDF5(H5Tset_size(type, value.size() + 1));
  H5Id space(CHECK_HDF5(H5Screate(H5S_SCALAR)), H5Sclose);
  H5Id attr(CHECK_HDF5(H5Acreate2(obj, name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT)), H5Aclose);
  CHECK_HDF5(H5Awrite(attr, type, value.c_str()));
}

// Creates the intermediate groups of "a/b/c" (HDF5 link creation property).
hid_t make_lcpl() {
  const hid_t lcpl = CHECK_HDF5(H5Pcreate(H5P_LINK_CREATE));
  CHECK_HDF5(H5Pset_create_intermediate_group(lcpl, 1));
  return lcpl;
}

void fsync_path(const std::string& path) {
  if (FILE* f = std::fopen(path.c_str(), "rb")) {
    ::fsync(fileno(f));
    std::fclose(f);
  }
}

}  // namespace

void write_h5_bundle(const std::string& path, const H5Bundle& bundle) {
  hdf5_quiet();
  const std::string tmp = path + ".tmp";
  std::filesystem::remove(tmp);
  {
    H5Id file(CHECK_HDF5(H5Fcreate(tmp.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT)), H5Fclose);
    H5Id lcpl(make_lcpl(), H5Pclose);
    for (const auto& [name, t0] : bundle.tensors) {
      const Tensor t = on_host(t0);
      // A scalar is stored as [1].
      const std::vector<hsize_t> dims = t.rank() == 0 ? std::vector<hsize_t>{1}
                                                      : std::vector<hsize_t>(t.shape().begin(), t.shape().end());
      H5Id space(CHECK_HDF5(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr)), H5Sclose);
      H5Id dcpl(CHECK_HDF5(H5Pcreate(H5P_DATASET_CREATE)), H5Pclose);
      if (t.numel() > 0) {
        // Chunks of up to ~1M elements along dim 0 so that Fletcher-32 applies.
        std::vector<hsize_t> chunk = dims;
        const hsize_t row = t.numel() / std::max<std::int64_t>(static_cast<std::int64_t>(dims[0]), 1);
        chunk[0] = std::max<hsize_t>(1, std::min<hsize_t>(dims[0], (hsize_t{1} << 20) / std::max<hsize_t>(row, 1)));
        CHECK_HDF5(H5Pset_chunk(dcpl, static_cast<int>(chunk.size()), chunk.data()));
        CHECK_HDF5(H5Pset_fletcher32(dcpl));
      }
      H5Id ds(CHECK_HDF5(H5Dcreate2(file, name.c_str(), file_type(t.dtype()), space, lcpl, dcpl, H5P_DEFAULT)), H5Dclose);
      write_attr(ds, "dtype", std::string(dtype_name(t.dtype())));
      if (t.numel() > 0) CHECK_HDF5(H5Dwrite(ds, mem_type(t.dtype()), H5S_ALL, H5S_ALL, H5P_DEFAULT, t.raw()));
    }
    for (const auto& [key, value] : bundle.attrs) write_attr(file, key, value);
    write_attr(file, "complete", "1");
    CHECK_HDF5(H5Fflush(file, H5F_SCOPE_GLOBAL));
  }
  fsync_path(tmp);
  std::filesystem::rename(tmp, path);
  fsync_path(std::filesystem::path(path).parent_path().empty() ? "." : std::filesystem::path(path).parent_path().string());
}

H5Reader::H5Reader(const std::string& path) : path_(path) {
  CRUCIBLE_USER_CHECK(std::filesystem::exists(path), "checkpoint not found: ", path);
  hdf5_quiet();
  const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  CRUCIBLE_USER_CHECK(f >= 0, path, ": cannot open as HDF5 (truncated or damaged?): ", hdf5_error_stack());
  file_ = f;
}

H5Reader::~H5Reader() {
  if (file_ >= 0) H5Fclose(static_cast<hid_t>(file_));
}

bool H5Reader::has_attr(const std::string& name) const { return H5Aexists(static_cast<hid_t>(file_), name.c_str()) > 0; }

namespace {

// The string attribute `name` of an HDF5 object (file or dataset); `where` names it in errors.
std::string string_attr(hid_t obj, const std::string& name, const std::string& where) {
  H5Id a(CHECK_HDF5(H5Aopen(obj, name.c_str(), H5P_DEFAULT)), H5Aclose);
  H5Id type(CHECK_HDF5(H5Aget_type(a)), H5Tclose);
  const std::size_t size = H5Tget_size(type);
  CRUCIBLE_USER_CHECK(H5Tget_class(type) == H5T_STRING && size > 0 && size < (256u << 20), where, ": attribute '",
                      name, "' is not a string");
  std::string buf(size, '\0');
  H5Id mem(CHECK_HDF5(H5Tcopy(H5T_C_S1)), H5Tclose);
  CHECK_HDF5(H5Tset_size(mem, size));
  CHECK_HDF5(H5Aread(a, mem, buf.data()));
  buf.resize(std::strlen(buf.c_str()));
  return buf;
}

}  // namespace

std::string H5Reader::attr(const std::string& name) const {
  CRUCIBLE_USER_CHECK(has_attr(name), path_, ": attribute '", name, "' is missing");
  return string_attr(static_cast<hid_t>(file_), name, path_);
}

bool H5Reader::has(const std::string& dataset) const {
  // H5Lexists needs every intermediate link to exist: walk the path.
  std::size_t pos = 0;
  while (true) {
    pos = dataset.find('/', pos + 1);
    const std::string prefix = dataset.substr(0, pos);
    if (H5Lexists(static_cast<hid_t>(file_), prefix.c_str(), H5P_DEFAULT) <= 0) return false;
    if (pos == std::string::npos) return true;
  }
}

Shape H5Reader::shape(const std::string& dataset) const {
  CRUCIBLE_USER_CHECK(has(dataset), path_, ": dataset '", dataset, "' is missing");
  H5Id ds(CHECK_HDF5(H5Dopen2(static_cast<hid_t>(file_), dataset.c_str(), H5P_DEFAULT)), H5Dclose);
  H5Id space(CHECK_HDF5(H5Dget_space(ds)), H5Sclose);
  const int rank = H5Sget_simple_extent_ndims(space);
  CRUCIBLE_USER_CHECK(rank >= 0 && rank <= Shape::kMaxDims, path_, ": dataset '", dataset, "' has a bad rank");
  std::vector<hsize_t> dims(static_cast<std::size_t>(rank));
  H5Sget_simple_extent_dims(space, dims.data(), nullptr);
  return Shape(dims.begin(), dims.end());
}

void H5Reader::read(const std::string& dataset, Tensor& dst) const {
  const Shape s = shape(dataset);
  CRUCIBLE_USER_CHECK(s.numel() == dst.numel(), path_, ": dataset '", dataset, "' has shape ", s.str(),
                      ", expected ", dst.shape().str());
  if (dst.numel() == 0) return;
  H5Id ds(CHECK_HDF5(H5Dopen2(static_cast<hid_t>(file_), dataset.c_str(), H5P_DEFAULT)), H5Dclose);
  // The dtype it was written as: HDF5 would otherwise convert numerically (bf16 is
  // stored as u16, so a bf16 dataset read as f32 would load garbage).
  if (H5Aexists(ds, "dtype") > 0) {
    const std::string stored = string_attr(ds, "dtype", path_ + ": dataset '" + dataset + "'");
    CRUCIBLE_USER_CHECK(stored == dtype_name(dst.dtype()), path_, ": dataset '", dataset, "' holds ", stored,
                        " values, expected ", dtype_name(dst.dtype()),
                        " (a setting that changes stored dtypes, e.g. bf16_moments, differs from the run that wrote it)");
  }
  // Device tensors are read into a host buffer first: a bad file then leaves dst as it was.
  Tensor host = dst.device().is_cpu() ? dst : Tensor(dst.shape(), dst.dtype(), Device::cpu(), dst.name());
  const herr_t rc = H5Dread(ds, mem_type(dst.dtype()), H5S_ALL, H5S_ALL, H5P_DEFAULT, host.raw());
  CRUCIBLE_USER_CHECK(rc >= 0, path_, ": dataset '", dataset, "' cannot be read (checksum mismatch or truncated file): ",
                      hdf5_error_stack());
  if (!dst.device().is_cpu()) dst.copy_from(host);
}

void H5Reader::verify(const std::string& dataset) const {
  CRUCIBLE_USER_CHECK(has(dataset), path_, ": dataset '", dataset, "' is missing");
  H5Id ds(CHECK_HDF5(H5Dopen2(static_cast<hid_t>(file_), dataset.c_str(), H5P_DEFAULT)), H5Dclose);
  H5Id ftype(CHECK_HDF5(H5Dget_type(ds)), H5Tclose);
  H5Id ntype(CHECK_HDF5(H5Tget_native_type(ftype, H5T_DIR_DEFAULT)), H5Tclose);
  H5Id space(CHECK_HDF5(H5Dget_space(ds)), H5Sclose);
  const hssize_t n = H5Sget_simple_extent_npoints(space);
  std::vector<unsigned char> buf(static_cast<std::size_t>(std::max<hssize_t>(n, 0)) * H5Tget_size(ntype) + 1);
  if (n == 0) return;
  const herr_t rc = H5Dread(ds, ntype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data());
  CRUCIBLE_USER_CHECK(rc >= 0, path_, ": dataset '", dataset, "' cannot be read (checksum mismatch or truncated file): ",
                      hdf5_error_stack());
}

std::vector<std::string> H5Reader::list(const std::string& group) const {
  std::vector<std::string> out;
  if (!has(group)) return out;
  H5Id g(CHECK_HDF5(H5Gopen2(static_cast<hid_t>(file_), group.c_str(), H5P_DEFAULT)), H5Gclose);
  H5G_info_t info;
  CHECK_HDF5(H5Gget_info(g, &info));
  for (hsize_t i = 0; i < info.nlinks; ++i) {
    const ssize_t n = H5Lget_name_by_idx(g, ".", H5_INDEX_CRT_ORDER, H5_ITER_INC, i, nullptr, 0, H5P_DEFAULT);
    if (n < 0) {
      // Creation order is not tracked: fall back to name order.
      const ssize_t m = H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, nullptr, 0, H5P_DEFAULT);
      std::string name(static_cast<std::size_t>(std::max<ssize_t>(m, 0)) + 1, '\0');
      H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, name.data(), name.size(), H5P_DEFAULT);
      name.resize(std::strlen(name.c_str()));
      out.push_back(name);
      continue;
    }
    std::string name(static_cast<std::size_t>(n) + 1, '\0');
    H5Lget_name_by_idx(g, ".", H5_INDEX_CRT_ORDER, H5_ITER_INC, i, name.data(), name.size(), H5P_DEFAULT);
    name.resize(std::strlen(name.c_str()));
    out.push_back(name);
  }
  hdf5_error_stack();  // clear the stack a failed creation-order lookup left
  return out;
}

bool H5Reader::complete() const { return has_attr("complete") && attr("complete") == "1"; }

}  // namespace crucible::checkpoints
