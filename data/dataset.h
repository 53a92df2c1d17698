// data/dataset.h: RL prompt and SFT datasets from JSONL; shuffled, sharded, resumable order.
//
// Record formats (one JSON object per line; other keys are ignored):
//   RL:  {"prompt": str, "answer": str | number, "id"?: str | int, "meta"?: object}
//   SFT: {"prompt": str, "response": str, "system"?: str, "id"?, "meta"?}
//     or {"messages": [{"role": "system"|"user"|"assistant"|"tool", "content": str}, ...],
//         "id"?, "meta"?}  (at least one assistant message; "prompt"/"response" then absent)
// A number answer is kept as its JSON text ("42", "0.5"). A missing id becomes
// "<line>" (the 1-based line in the file). Bad records are errors naming
// "<file>:<line>: key 'answer' ..." (or skipped and counted, JsonlOptions).
//
// Order: epoch e visits a permutation of the whole dataset, Fisher-Yates over a
// Philox stream keyed by (seed, e), so the order depends on nothing but (seed, e, N).
// Rank r of W takes positions r, r+W, r+2W, ... of that permutation (strided, as
// PyTorch's DistributedSampler does), so in every epoch the ranks' shares are
// disjoint, cover the dataset, and differ in size by at most one; a rank's share
// changes from epoch to epoch. A DataCursor (epoch, position within this rank's shard) is all a checkpoint
// needs to resume the stream exactly.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/json.h"
#include "data/jsonl.h"

namespace crucible::data {

struct RlPrompt {
  std::string id;
  std::string prompt;
  std::string answer;  // the reference answer, as text
  json::Value meta;    // object (empty when absent): task, verifier inputs, difficulty
};

struct SftMessage {
  std::string role;  // "system", "user", "assistant" or "tool"
  std::string content;
};

struct SftExample {
  std::string id;
  std::vector<SftMessage> messages;  // prompt/response records become [user, assistant] (+ system first)
  json::Value meta;
};

// Record converters (throw BadRecord with the reason; the reader adds file:line).
RlPrompt rl_prompt_from_json(const json::Value& obj, std::int64_t line);
SftExample sft_example_from_json(const json::Value& obj, std::int64_t line);
json::Value to_json(const RlPrompt& p);    // {"id","prompt","answer","meta"}
json::Value to_json(const SftExample& e);  // {"id","messages","meta"}

// Loaders. `stats`, when given, receives the reader's counters.
std::vector<RlPrompt> load_rl_prompts(const std::string& path, const JsonlOptions& opts = {},
                                      JsonlStats* stats = nullptr);
std::vector<SftExample> load_sft(const std::string& path, const JsonlOptions& opts = {},
                                 JsonlStats* stats = nullptr);
// The same over in-memory text; `source` names it in messages.
std::vector<RlPrompt> parse_rl_prompts(std::string text, std::string source, const JsonlOptions& opts = {},
                                       JsonlStats* stats = nullptr);
std::vector<SftExample> parse_sft(std::string text, std::string source, const JsonlOptions& opts = {},
                                  JsonlStats* stats = nullptr);

// ---------------------------------------------------------------------------- order

// The visiting order of epoch `epoch`: a permutation of [0, n) (identity when !shuffle).
std::vector<std::size_t> epoch_permutation(std::size_t n, std::uint64_t seed, std::uint64_t epoch,
                                           bool shuffle = true);
// Rank `rank`'s share of n positions under strided sharding: ceil((n - rank) / world).
std::size_t shard_size(std::size_t n, int rank, int world);

// Where a rank's stream stands: `position` items of epoch `epoch` consumed.
struct DataCursor {
  std::uint64_t epoch = 0;
  std::uint64_t position = 0;
  json::Value to_json() const;  // {"epoch": e, "position": p}
  static DataCursor from_json(const json::Value& v);
  friend bool operator==(const DataCursor&, const DataCursor&) = default;
};

struct DatasetOptions {
  std::uint64_t seed = 0;
  bool shuffle = true;
};

// A read-only view of items: shares them with its shards (cheap to copy).
template <typename T>
class Dataset {
 public:
  Dataset() = default;
  explicit Dataset(std::vector<T> items, DatasetOptions opts = {})
      : items_(std::make_shared<const std::vector<T>>(std::move(items))), opts_(opts) {}

  // This rank's view; the shards of ranks 0..world-1 partition every epoch.
  Dataset shard_for_rank(int rank, int world) const {
    CRUCIBLE_USER_CHECK(world >= 1 && rank >= 0 && rank < world, "dataset shard: rank ", rank,
                        " is not in [0, world) with world ", world);
    CRUCIBLE_CHECK(world_ == 1, "a dataset shard cannot be sharded again");
    Dataset d = *this;
    d.rank_ = rank;
    d.world_ = world;
    return d;
  }

  std::size_t size() const { return shard_size(total(), rank_, world_); }  // items per epoch on this rank
  std::size_t total() const { return items_ ? items_->size() : 0; }        // items in the whole dataset
  int rank() const { return rank_; }
  int world() const { return world_; }
  const DatasetOptions& options() const { return opts_; }
  const std::vector<T>& items() const { return *items_; }

  // Indices into items() that this rank visits in epoch `epoch`, in order.
  std::vector<std::size_t> epoch_order(std::uint64_t epoch) const {
    const std::vector<std::size_t> perm = epoch_permutation(total(), opts_.seed, epoch, opts_.shuffle);
    std::vector<std::size_t> mine;
    mine.reserve(size());
    for (std::size_t i = static_cast<std::size_t>(rank_); i < perm.size(); i += static_cast<std::size_t>(world_))
      mine.push_back(perm[i]);
    return mine;
  }

 private:
  std::shared_ptr<const std::vector<T>> items_;
  DatasetOptions opts_;
  int rank_ = 0, world_ = 1;
};

// An endless stream over a dataset (epoch after epoch) that can stop and resume.
template <typename T>
class DataStream {
 public:
  explicit DataStream(Dataset<T> ds, DataCursor start = {}) : ds_(std::move(ds)) { seek(start); }

  // The next item; at the end of an epoch the next epoch's order begins.
  const T& next() {
    CRUCIBLE_USER_CHECK(ds_.size() > 0, "data stream: rank ", ds_.rank(), " of ", ds_.world(),
                        " has no items (the dataset holds ", ds_.total(), ")");
    if (cursor_.position >= order_.size()) seek({cursor_.epoch + 1, 0});
    return ds_.items()[order_[cursor_.position++]];
  }

  // Where the stream stands; DataStream(ds, cursor()) continues exactly from here.
  const DataCursor& cursor() const { return cursor_; }

  void seek(DataCursor c) {
    CRUCIBLE_USER_CHECK(c.position <= ds_.size(), "data cursor position ", c.position,
                        " is past the shard's end (", ds_.size(),
                        " items): was the checkpoint written with another dataset or world size?");
    if (order_.empty() || c.epoch != order_epoch_) {
      order_ = ds_.epoch_order(c.epoch);
      order_epoch_ = c.epoch;
    }
    cursor_ = c;
  }

  const Dataset<T>& dataset() const { return ds_; }

 private:
  Dataset<T> ds_;
  DataCursor cursor_;
  std::vector<std::size_t> order_;
  std::uint64_t order_epoch_ = 0;
};

}  // namespace crucible::data
