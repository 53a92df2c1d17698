// data/packing.cpp: row planning (greedy / first-fit-decreasing) and packed-row tensors.
//
// Invariant: every kept example lies whole in exactly one row, rows hold at most
// max_tokens, and in a built row targets and loss mask never look across an
// example boundary (position t of example e targets token t+1 of e, or itself at
// e's last token with mask 0).
// Reference: Krell et al., "Efficient Sequence Packing without Cross-contamination"
// (arXiv:2107.02027); FFD bin packing (Johnson 1973); model/transformer.h Batch.
#include "data/packing.h"

#include <algorithm>
#include <limits>
#include <numeric>

#include "core/error.h"

namespace crucible::data {

void PackingOptions::validate() const {
  CRUCIBLE_USER_CHECK(max_tokens >= 1 && max_tokens <= std::numeric_limits<std::int32_t>::max(),
                      "packing: max_tokens must be in [1, 2^31), got ", max_tokens);
}

std::int64_t PackPlan::row_tokens(std::size_t row) const {
  std::int64_t n = 0;
  for (std::size_t e : rows.at(row)) n += lengths[e];
  return n;
}

double PackPlan::fill() const {
  if (rows.empty()) return 0;
  const std::int64_t used = std::accumulate(lengths.begin(), lengths.end(), std::int64_t{0});
  return static_cast<double>(used) / (static_cast<double>(rows.size()) * static_cast<double>(max_tokens));
}

PackPlan plan_packing(std::span<const TokenizedExample> examples, const PackingOptions& opts) {
  opts.validate();
  PackPlan plan;
  plan.max_tokens = opts.max_tokens;
  plan.lengths.resize(examples.size());
  for (std::size_t i = 0; i < examples.size(); ++i) {
    const TokenizedExample& ex = examples[i];
    const auto n = static_cast<std::int64_t>(ex.ids.size());
    CRUCIBLE_USER_CHECK(n > 0, "packing: example ", i, " has no tokens");
    CRUCIBLE_USER_CHECK(ex.loss_mask.size() == ex.ids.size(), "packing: example ", i, " has ", n,
                        " ids but a loss mask of ", ex.loss_mask.size());
    std::int64_t len = n;
    if (n > opts.max_tokens) {
      switch (opts.overlong) {
        case Overlong::Error:
          CRUCIBLE_FAIL("packing: example ", i, " has ", n, " tokens, more than max_tokens = ", opts.max_tokens,
                        " (raise max_tokens, or set overlong to truncate or drop)");
        case Overlong::Truncate:
          len = opts.max_tokens;
          ++plan.truncated;
          break;
        case Overlong::Drop:
          len = 0;
          ++plan.dropped;
          break;
      }
      plan.tokens_cut += n - len;
    }
    plan.lengths[i] = len;
  }

  if (opts.strategy == PackStrategy::Greedy) {
    std::int64_t used = 0;
    for (std::size_t i = 0; i < examples.size(); ++i) {
      const std::int64_t len = plan.lengths[i];
      if (len == 0) continue;
      if (plan.rows.empty() || used + len > opts.max_tokens) {
        plan.rows.emplace_back();
        used = 0;
      }
      plan.rows.back().push_back(i);
      used += len;
    }
    return plan;
  }

  // First-fit decreasing: longest first (stable: ties keep index order), each into
  // the first row with room. NOTE: O(examples x rows); callers pack windows of a
  // few thousand examples, where this is microseconds per example.
  std::vector<std::size_t> order(examples.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return plan.lengths[a] > plan.lengths[b]; });
  std::vector<std::int64_t> room;
  for (std::size_t i : order) {
    const std::int64_t len = plan.lengths[i];
    if (len == 0) continue;
    std::size_t r = 0;
    while (r < room.size() && room[r] < len) ++r;
    if (r == room.size()) {
      room.push_back(opts.max_tokens);
      plan.rows.emplace_back();
    }
    room[r] -= len;
    plan.rows[r].push_back(i);
  }
  return plan;
}

PackedRow build_packed_row(std::span<const TokenizedExample> examples, const PackPlan& plan, std::size_t row) {
  CRUCIBLE_CHECK(row < plan.rows.size(), "row ", row, " of ", plan.rows.size());
  CRUCIBLE_CHECK(plan.lengths.size() == examples.size(), "plan made for ", plan.lengths.size(),
                 " examples, given ", examples.size());
  const std::vector<std::size_t>& members = plan.rows[row];
  const std::int64_t T = plan.row_tokens(row);
  const auto B = static_cast<std::int64_t>(members.size());
  PackedRow out;
  out.ids = Tensor(Shape{T}, DType::I32, Device::cpu(), "packed.ids");
  out.targets = Tensor(Shape{T}, DType::I32, Device::cpu(), "packed.targets");
  out.pos = Tensor(Shape{T}, DType::I32, Device::cpu(), "packed.pos");
  out.cu_seqlens = Tensor(Shape{B + 1}, DType::I32, Device::cpu(), "packed.cu_seqlens");
  out.loss_mask = Tensor(Shape{T}, DType::F32, Device::cpu(), "packed.loss_mask");
  std::int32_t* ids = out.ids.data<std::int32_t>();      // [T]
  std::int32_t* tg = out.targets.data<std::int32_t>();   // [T]
  std::int32_t* pos = out.pos.data<std::int32_t>();      // [T]
  std::int32_t* cu = out.cu_seqlens.data<std::int32_t>();  // [B+1]
  float* mask = out.loss_mask.data<float>();             // [T]
  std::int32_t t = 0;
  cu[0] = 0;
  for (std::int64_t b = 0; b < B; ++b) {
    const TokenizedExample& ex = examples[members[static_cast<std::size_t>(b)]];
    const auto n = static_cast<std::int32_t>(plan.lengths[members[static_cast<std::size_t>(b)]]);
    for (std::int32_t j = 0; j < n; ++j, ++t) {
      const bool last = j + 1 == n;
      ids[t] = ex.ids[static_cast<std::size_t>(j)];
      tg[t] = last ? ids[t] : ex.ids[static_cast<std::size_t>(j) + 1];
      pos[t] = j;
      const bool learn = !last && ex.loss_mask[static_cast<std::size_t>(j) + 1] != 0;
      mask[t] = learn ? 1.0f : 0.0f;
      out.loss_tokens += learn;
    }
    cu[b + 1] = t;
  }
  return out;
}

std::vector<PackedRow> pack_examples(std::span<const TokenizedExample> examples, const PackingOptions& opts,
                                     PackPlan* plan_out) {
  PackPlan plan = plan_packing(examples, opts);
  std::vector<PackedRow> rows;
  rows.reserve(plan.rows.size());
  for (std::size_t r = 0; r < plan.rows.size(); ++r) rows.push_back(build_packed_row(examples, plan, r));
  if (plan_out) *plan_out = std::move(plan);
  return rows;
}

}  // namespace crucible::data
