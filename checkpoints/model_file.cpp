// checkpoints/model_file.cpp: HDF5 model checkpoints (see model_file.h).
#include "checkpoints/model_file.h"

#include <hdf5.h>

#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "checkpoints/hdf5_check.h"
#include "checkpoints/hf_config.h"
#include "checkpoints/hf_import.h"
#include "checkpoints/safetensors.h"
#include "core/json.h"

namespace crucible::checkpoints {

namespace {

// RAII for HDF5 ids.
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

void write_string_attribute(hid_t obj, const char* name, const std::string& value) {
  H5Id type(CHECK_HDF5(H5Tcopy(H5T_C_S1)), H5Tclose);
  CHECK_HDF5(H5Tset_size(type, value.size() + 1));
  H5Id space(CHECK_HDF5(H5Screate(H5S_SCALAR)), H5Sclose);
  H5Id attr(CHECK_HDF5(H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT)), H5Aclose);
  CHECK_HDF5(H5Awrite(attr, type, value.c_str()));
}

std::string read_string_attribute(hid_t obj, const char* name, const std::string& path) {
  CRUCIBLE_USER_CHECK(H5Aexists(obj, name) > 0, path, ": not a crucible checkpoint (no '", name, "' attribute)");
  H5Id attr(CHECK_HDF5(H5Aopen(obj, name, H5P_DEFAULT)), H5Aclose);
  H5Id type(CHECK_HDF5(H5Aget_type(attr)), H5Tclose);
  const std::size_t size = H5Tget_size(type);
  CRUCIBLE_USER_CHECK(H5Tget_class(type) == H5T_STRING && size > 0 && size < (64u << 20), path,
                      ": attribute '", name, "' is not a string");
  std::string buf(size, '\0');
  H5Id mem(CHECK_HDF5(H5Tcopy(H5T_C_S1)), H5Tclose);
  CHECK_HDF5(H5Tset_size(mem, size));
  CHECK_HDF5(H5Aread(attr, mem, buf.data()));
  buf.resize(std::strlen(buf.c_str()));
  return buf;
}

}  // namespace

void save_model(const std::string& path, const ModelWeights& weights) {
  hdf5_quiet();
  const std::string tmp = path + ".tmp";
  std::filesystem::remove(tmp);
  {
    H5Id file(CHECK_HDF5(H5Fcreate(tmp.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT)), H5Fclose);
    write_string_attribute(file, "format", "crucible-model-1");
    write_string_attribute(file, "config", json::dump(model_config_to_hf(weights.config()), 2));
    H5Id group(CHECK_HDF5(H5Gcreate2(file, "weights", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)), H5Gclose);
    for (const auto& e : weights.layout().entries()) {
      const Tensor t = weights.params().view(e.name).to(Device::cpu());
      std::vector<hsize_t> dims(e.shape.begin(), e.shape.end());
      H5Id space(CHECK_HDF5(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr)), H5Sclose);
      // Chunked so that Fletcher-32 applies; one chunk per up to ~1M elements along dim 0.
      H5Id dcpl(CHECK_HDF5(H5Pcreate(H5P_DATASET_CREATE)), H5Pclose);
      std::vector<hsize_t> chunk = dims;
      const hsize_t row = dims.size() > 1 ? static_cast<hsize_t>(t.numel() / std::max<std::int64_t>(t.dim(0), 1)) : 1;
      chunk[0] = std::max<hsize_t>(1, std::min<hsize_t>(dims[0], (1u << 20) / std::max<hsize_t>(row, 1)));
      if (t.numel() > 0) {
        CHECK_HDF5(H5Pset_chunk(dcpl, static_cast<int>(chunk.size()), chunk.data()));
        CHECK_HDF5(H5Pset_fletcher32(dcpl));
      }
      H5Id ds(CHECK_HDF5(H5Dcreate2(group, e.name.c_str(), H5T_IEEE_F32LE, space, H5P_DEFAULT, dcpl, H5P_DEFAULT)),
              H5Dclose);
      if (t.numel() > 0) CHECK_HDF5(H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, t.raw()));
    }
    CHECK_HDF5(H5Fflush(file, H5F_SCOPE_GLOBAL));
  }
  // The HDF5 file is closed (and flushed); make the rename the commit point.
  if (FILE* f = std::fopen(tmp.c_str(), "rb")) {
    ::fsync(fileno(f));
    std::fclose(f);
  }
  std::filesystem::rename(tmp, path);
}

bool is_model_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char sig[8] = {0};
  in.read(sig, 8);
  return in.gcount() == 8 && std::string(sig, 8) == "\x89HDF\r\n\x1a\n";
}

std::unique_ptr<ModelWeights> load_model(const std::string& path, bool with_grads) {
  namespace fs = std::filesystem;
  CRUCIBLE_USER_CHECK(fs::exists(path), "checkpoint not found: ", path);
  if (fs::is_directory(path)) return import_hf_model(path, with_grads);
  CRUCIBLE_USER_CHECK(is_model_file(path), path, ": not a crucible checkpoint (HDF5) nor a Hugging Face directory");
  hdf5_quiet();
  const hid_t raw = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  CRUCIBLE_USER_CHECK(raw >= 0, path, ": cannot open as HDF5 (truncated or damaged?): ", hdf5_error_stack());
  H5Id file(raw, H5Fclose);
  const std::string format = read_string_attribute(file, "format", path);
  CRUCIBLE_USER_CHECK(format == "crucible-model-1", path, ": unknown checkpoint format '", format, "'");
  const ModelConfig config = model_config_from_hf(json::parse(read_string_attribute(file, "config", path), path + ":/config"),
                                                  path + ":/config");
  auto weights = std::make_unique<ModelWeights>(config, Device::cpu(), with_grads);
  for (const auto& e : weights->layout().entries()) {
    const std::string where = path + ": tensor '" + e.name + "'";
    CRUCIBLE_USER_CHECK(H5Lexists(file, ("weights/" + e.name).c_str(), H5P_DEFAULT) > 0, where, " is missing");
    H5Id ds(CHECK_HDF5(H5Dopen2(file, ("weights/" + e.name).c_str(), H5P_DEFAULT)), H5Dclose);
    H5Id space(CHECK_HDF5(H5Dget_space(ds)), H5Sclose);
    const int rank = H5Sget_simple_extent_ndims(space);
    std::vector<hsize_t> dims(static_cast<std::size_t>(std::max(rank, 0)));
    H5Sget_simple_extent_dims(space, dims.data(), nullptr);
    const Shape got(dims.begin(), dims.end());
    CRUCIBLE_USER_CHECK(got == e.shape, where, " has shape ", got.str(), ", the config needs ", e.shape.str());
    Tensor t = weights->param(e.name);
    if (t.numel() == 0) continue;
    const herr_t rc = H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, t.raw());
    CRUCIBLE_USER_CHECK(rc >= 0, where, " cannot be read (checksum mismatch or truncated file): ",
                        hdf5_error_stack());
  }
  return weights;
}

StoredModel describe_stored(const std::string& path) {
  namespace fs = std::filesystem;
  CRUCIBLE_USER_CHECK(fs::exists(path), "checkpoint not found: ", path);
  StoredModel out;
  if (fs::is_directory(path)) {
    out.format = "hf-safetensors";
    out.config = read_hf_config(path);
    const SafetensorsIndex index = SafetensorsIndex::open(path);
    for (const std::string& name : index.names()) {
      if (name.ends_with("_scale_inv")) continue;
      const SafetensorsTensorInfo& info = index.info(name);
      ++out.tensors;
      out.params += info.shape.numel();
      if (info.dtype == StDType::F8_E4M3 && index.contains(name + "_scale_inv")) ++out.fp8_tensors;
    }
    if (out.config.num_nextn_predict_layers > 0 &&
        !index.contains("model.layers." + std::to_string(out.config.num_hidden_layers) + ".eh_proj.weight"))
      out.config.num_nextn_predict_layers = 0;
    return out;
  }
  CRUCIBLE_USER_CHECK(is_model_file(path), path, ": not a crucible checkpoint (HDF5) nor a Hugging Face directory");
  hdf5_quiet();
  const hid_t raw = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  CRUCIBLE_USER_CHECK(raw >= 0, path, ": cannot open as HDF5 (truncated or damaged?): ", hdf5_error_stack());
  H5Id file(raw, H5Fclose);
  out.format = "crucible-hdf5";
  out.config = model_config_from_hf(json::parse(read_string_attribute(file, "config", path), path + ":/config"),
                                    path + ":/config");
  H5Id group(CHECK_HDF5(H5Gopen2(file, "weights", H5P_DEFAULT)), H5Gclose);
  H5G_info_t info;
  CHECK_HDF5(H5Gget_info(group, &info));
  for (hsize_t i = 0; i < info.nlinks; ++i) {
    H5Id ds(CHECK_HDF5(H5Dopen2(group, [&] {
              char name[1024] = {0};
              H5Lget_name_by_idx(group, ".", H5_INDEX_NAME, H5_ITER_INC, i, name, sizeof name, H5P_DEFAULT);
              return std::string(name);
            }().c_str(), H5P_DEFAULT)),
            H5Dclose);
    H5Id space(CHECK_HDF5(H5Dget_space(ds)), H5Sclose);
    out.params += H5Sget_simple_extent_npoints(space);
    ++out.tensors;
  }
  return out;
}

}  // namespace crucible::checkpoints
