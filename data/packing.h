// data/packing.h: packing tokenized SFT examples into rows of at most max_tokens.
//
// Input: examples already tokenized (chat template applied), each ids + a loss
// mask that is 1 exactly on the tokens the model must learn to produce (the
// assistant response, including its end token) and 0 on prompt tokens.
// A row holds whole examples only (never one split across rows), at most
// max_tokens in total. The model consumes a row as one packed Batch
// (model/transformer.h): ids [T], targets [T] (the next token of the same
// example; an example's last position targets its own token and is masked),
// pos [T] restarting at 0 per example, cu_seqlens [B+1] with B examples in the
// row. The loss mask [T] f32 is aligned to targets: mask[t] = 1 iff token t+1
// belongs to the same example and is a response token. So no target ever crosses
// an example boundary and no prompt token is ever trained on.
//
// Strategies (both deterministic):
//   Greedy: examples in the given order; a row is closed when the next example
//     does not fit. Keeps the (shuffled) data order; the default.
//   FirstFitDecreasing: examples sorted by length (longest first, ties by index),
//     each placed in the first row with room. Fewer rows; rows come out roughly
//     longest-first, so pack a window of examples and shuffle the rows after.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "core/tensor.h"

namespace crucible::data {

struct TokenizedExample {
  std::vector<std::int32_t> ids;        // [n] token ids
  std::vector<std::uint8_t> loss_mask;  // [n] 1 on response tokens, 0 elsewhere
};

enum class PackStrategy { Greedy, FirstFitDecreasing };
enum class Overlong { Truncate, Drop, Error };  // an example longer than max_tokens

struct PackingOptions {
  std::int64_t max_tokens = 4096;  // tokens per row
  PackStrategy strategy = PackStrategy::Greedy;
  Overlong overlong = Overlong::Truncate;  // Truncate keeps the first max_tokens tokens
  void validate() const;
};

// Which examples go in which row, in order; lengths after truncation.
struct PackPlan {
  std::vector<std::vector<std::size_t>> rows;  // example indices per row
  std::vector<std::int64_t> lengths;           // [examples] tokens used per example (0 = dropped)
  std::int64_t truncated = 0;                  // examples cut to max_tokens
  std::int64_t dropped = 0;                    // examples left out (Overlong::Drop)
  std::int64_t tokens_cut = 0;                 // tokens removed by truncation or dropping
  std::int64_t max_tokens = 0;                 // the row capacity planned for
  std::int64_t row_tokens(std::size_t row) const;
  double fill() const;  // used tokens / (rows * max_tokens)
};

// Plans rows; checks every example (ids and mask of the same non-zero length).
// Overlong::Error throws naming the example, its length and max_tokens.
PackPlan plan_packing(std::span<const TokenizedExample> examples, const PackingOptions& opts);

// One packed row as the tensors a Batch takes (CPU, I32) plus the loss mask (F32).
struct PackedRow {
  Tensor ids;         // [T] i32
  Tensor targets;     // [T] i32: next token of the same example; own token at an example's end
  Tensor pos;         // [T] i32: 0, 1, ... per example
  Tensor cu_seqlens;  // [B+1] i32: example boundaries, cu[0] = 0, cu[B] = T
  Tensor loss_mask;   // [T] f32: 1 where targets[t] is a response token of the same example
  std::int64_t loss_tokens = 0;  // Σ loss_mask
};

// Builds row `row` of `plan` (examples truncated to plan.lengths).
PackedRow build_packed_row(std::span<const TokenizedExample> examples, const PackPlan& plan, std::size_t row);

// plan_packing + build_packed_row for every row; `plan`, when given, receives the plan.
std::vector<PackedRow> pack_examples(std::span<const TokenizedExample> examples, const PackingOptions& opts,
                                     PackPlan* plan = nullptr);

}  // namespace crucible::data
