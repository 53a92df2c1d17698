// checkpoints/train_state.cpp: training-state bundles and the checkpoint folder.
#include "checkpoints/train_state.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "checkpoints/h5_bundle.h"
#include "checkpoints/hf_config.h"
#include "checkpoints/model_file.h"
#include "core/json.h"

namespace crucible::checkpoints {

namespace fs = std::filesystem;

void save_train_state(const std::string& path, const ModelWeights& weights, const Moments& moments,
                      const TrainState& state) {
  H5Bundle b;
  b.attrs = {{"format", "crucible-train-1"},
             {"config", json::dump(model_config_to_hf(weights.config()), 2)},
             {"stage", state.stage},
             {"stage_index", std::to_string(state.stage_index)},
             {"step", std::to_string(state.step)},
             {"run_config", state.run_config},
             {"resume", state.resume_json}};
  for (const auto& e : weights.layout().entries()) {
    b.tensors.emplace_back("weights/" + e.name, weights.params().view(e.name));
    if (moments.m) b.tensors.emplace_back("optim/m/" + e.name, moments.m->view(e.name));
    if (moments.v) b.tensors.emplace_back("optim/v/" + e.name, moments.v->view(e.name));
  }
  write_h5_bundle(path, b);
}

namespace {
TrainState state_of(const H5Reader& r) {
  CRUCIBLE_USER_CHECK(r.attr("format") == "crucible-train-1", r.path(), ": not a training checkpoint");
  TrainState s;
  s.stage = r.attr("stage");
  s.stage_index = std::stoll(r.attr("stage_index"));
  s.step = std::stoll(r.attr("step"));
  s.run_config = r.attr("run_config");
  s.resume_json = r.attr("resume");
  return s;
}
}  // namespace

TrainState read_train_state(const std::string& path) {
  const H5Reader r(path);
  CRUCIBLE_USER_CHECK(r.complete(), path, ": checkpoint is incomplete (its writer did not finish)");
  return state_of(r);
}

TrainState load_train_state(const std::string& path, ModelWeights& weights, const Moments& moments) {
  const H5Reader r(path);
  CRUCIBLE_USER_CHECK(r.complete(), path, ": checkpoint is incomplete (its writer did not finish)");
  TrainState s = state_of(r);
  const ModelConfig stored = read_model_config(r);
  CRUCIBLE_USER_CHECK(parameter_table(stored).size() == parameter_table(weights.config()).size() &&
                          stored.hidden_size == weights.config().hidden_size,
                      path, ": the checkpoint's model does not match the run's model");
  read_weights(r, weights);
  for (const auto& [arena, group] : {std::pair{moments.m, "optim/m/"}, std::pair{moments.v, "optim/v/"}}) {
    if (!arena) continue;
    for (const auto& e : arena->layout().entries()) {
      Tensor t = arena->view(e.name);
      r.read(group + e.name, t);
    }
  }
  return s;
}

TrainState load_train_state(const std::string& path, ModelWeights& weights, const MomentShard& moments) {
  TrainState s = load_train_state(path, weights, Moments{});
  CRUCIBLE_CHECK(moments.shards && moments.m.defined() && moments.v.defined(), path,
                 ": a moment shard needs its FlatShards and m, v tensors");
  const dist::FlatShards& shards = *moments.shards;
  const Layout& layout = weights.layout();
  CRUCIBLE_CHECK(shards.total() == dist::layout_elems(layout) && moments.m.numel() == shards.shard_elems() &&
                     moments.v.numel() == shards.shard_elems(),
                 path, ": moment shard of ", moments.m.numel(), " elements does not fit the model's ",
                 dist::layout_elems(layout), " parameters over ", shards.world(), " ranks");
  const H5Reader r(path);
  for (const auto& [dst, group] : {std::pair{moments.m, "optim/m/"}, std::pair{moments.v, "optim/v/"}}) {
    Tensor shard = dst;
    shard.zero();  // padding and any element not in the file's tensors
    for (const std::size_t i : dist::entries_of_rank(shards, layout, moments.rank)) {
      const Layout::Entry& e = layout.entries()[i];
      const std::string name = group + e.name;
      CRUCIBLE_USER_CHECK(r.has(name), path, ": has no optimizer moment '", name,
                          "' (written without an optimizer?); cannot resume the optimizer from it");
      Tensor whole(e.shape, shard.dtype(), Device::cpu(), name);  // one tensor at a time, on the host
      r.read(name, whole);
      const Tensor flat = whole.reshape(Shape{whole.numel()});
      for (const dist::FlatShards::Piece& piece : dist::entry_owners(shards, e)) {
        if (piece.rank != moments.rank) continue;
        shard.slice(piece.shard_offset, piece.shard_offset + piece.elems.size())
            .copy_from(flat.slice(piece.span_offset, piece.span_offset + piece.elems.size()));
      }
    }
  }
  return s;
}

bool verify_checkpoint(const std::string& path, std::string* reason) {
  try {
    const H5Reader r(path);
    if (!r.complete()) {
      if (reason) *reason = "incomplete (its writer did not finish)";
      return false;
    }
    for (const char* group : {"weights", "optim/m", "optim/v"})
      for (const std::string& name : r.list(group)) r.verify(std::string(group) + "/" + name);
    return true;
  } catch (const Error& e) {
    if (reason) *reason = e.what();
    return false;
  }
}

CheckpointDir::CheckpointDir(std::string dir, std::int64_t keep_last) : dir_(std::move(dir)), keep_last_(keep_last) {
  CRUCIBLE_USER_CHECK(keep_last_ >= 1, "checkpoint keep_last must be >= 1, got ", keep_last_);
  fs::create_directories(dir_);
}

std::string CheckpointDir::save(const ModelWeights& weights, const Moments& moments, const TrainState& state) {
  char name[64];
  std::snprintf(name, sizeof name, "-step%06lld.h5", static_cast<long long>(state.step));
  const std::string path = (fs::path(dir_) / (state.stage + name)).string();
  save_train_state(path, weights, moments, state);
  const auto all = list(state.stage);
  for (std::size_t i = 0; i + static_cast<std::size_t>(keep_last_) < all.size(); ++i) fs::remove(all[i]);
  return path;
}

std::vector<std::string> CheckpointDir::list(const std::string& stage) const {
  std::vector<std::string> out;
  if (!fs::exists(dir_)) return out;
  for (const auto& entry : fs::directory_iterator(dir_)) {
    const std::string name = entry.path().filename().string();
    if (entry.path().extension() != ".h5" || name.find("-step") == std::string::npos) continue;
    if (!stage.empty() && name.rfind(stage + "-step", 0) != 0) continue;
    out.push_back(entry.path().string());
  }
  std::sort(out.begin(), out.end());  // zero-padded steps sort in order
  return out;
}

std::optional<std::string> CheckpointDir::latest_good(const std::string& stage, std::vector<std::string>* skipped) const {
  auto all = list(stage);
  for (auto it = all.rbegin(); it != all.rend(); ++it) {
    std::string reason;
    if (verify_checkpoint(*it, &reason)) return *it;
    if (skipped) skipped->push_back(*it + ": " + reason);
  }
  return std::nullopt;
}

}  // namespace crucible::checkpoints
