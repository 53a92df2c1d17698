// tests/data/test_dataset.cpp: shuffled order, rank sharding, cursor resume, and packing
// invariants (whole examples, masks on response tokens only, targets within examples).
#include <algorithm>
#include <numeric>
#include <set>
#include <vector>

#include "core/rng.h"
#include "data/dataset.h"
#include "data/packing.h"
#include "tests/catch.h"

using namespace crucible;
using namespace crucible::data;
using Catch::Contains;

namespace {

bool is_permutation_of_iota(std::vector<std::size_t> v, std::size_t n) {
  if (v.size() != n) return false;
  std::sort(v.begin(), v.end());
  for (std::size_t i = 0; i < n; ++i)
    if (v[i] != i) return false;
  return true;
}

}  // namespace

TEST_CASE("dataset: epoch permutations are deterministic permutations", "[dataset]") {
  for (std::size_t n : {0u, 1u, 2u, 7u, 1000u}) {
    const auto a = epoch_permutation(n, 42, 0);
    CHECK(is_permutation_of_iota(a, n));
    CHECK(a == epoch_permutation(n, 42, 0));  // same (seed, epoch): same order
    if (n >= 7) {
      CHECK(a != epoch_permutation(n, 42, 1));  // another epoch
      CHECK(a != epoch_permutation(n, 43, 0));  // another seed
    }
  }
  const auto id = epoch_permutation(5, 1, 3, /*shuffle=*/false);
  CHECK(id == std::vector<std::size_t>{0, 1, 2, 3, 4});
  // Pinned values: the order must not change across platforms or refactors.
  CHECK(epoch_permutation(8, 1234, 0) == std::vector<std::size_t>{0, 6, 5, 1, 3, 2, 4, 7});
  CHECK(epoch_permutation(8, 1234, 1) == std::vector<std::size_t>{6, 2, 3, 7, 1, 5, 4, 0});
}

TEST_CASE("dataset: shuffle is roughly uniform (first position)", "[dataset]") {
  // Each of 8 items should lead an epoch ~1/8 of the time over 4000 epochs.
  std::vector<int> first(8, 0);
  for (std::uint64_t e = 0; e < 4000; ++e) ++first[epoch_permutation(8, 7, e)[0]];
  for (int c : first) CHECK(std::abs(c - 500) < 100);  // ~4.7 sigma
}

TEST_CASE("dataset: shards of all ranks cover every item exactly once per epoch", "[dataset]") {
  std::vector<int> items(103);
  std::iota(items.begin(), items.end(), 0);
  const Dataset<int> ds(items, {.seed = 9, .shuffle = true});
  for (int world : {1, 2, 3, 4, 8, 200}) {
    for (std::uint64_t epoch : {0u, 5u}) {
      std::vector<int> seen(items.size(), 0);
      std::size_t min_size = SIZE_MAX, max_size = 0;
      for (int r = 0; r < world; ++r) {
        const Dataset<int> shard = ds.shard_for_rank(r, world);
        const auto order = shard.epoch_order(epoch);
        CHECK(order.size() == shard.size());
        min_size = std::min(min_size, order.size());
        max_size = std::max(max_size, order.size());
        for (std::size_t i : order) ++seen[i];
      }
      CHECK(std::all_of(seen.begin(), seen.end(), [](int c) { return c == 1; }));
      CHECK(max_size - min_size <= 1);
    }
  }
  CHECK_THAT(std::string([&] {
               try {
                 ds.shard_for_rank(2, 2);
               } catch (const Error& e) {
                 return std::string(e.what());
               }
               return std::string();
             }()),
             Contains("rank 2 is not in [0, world)"));
}

TEST_CASE("dataset: a stream resumes exactly from its cursor, across epochs", "[dataset]") {
  std::vector<int> items(37);
  std::iota(items.begin(), items.end(), 0);
  const Dataset<int> shard = Dataset<int>(items, {.seed = 5}).shard_for_rank(1, 3);  // 12 items
  REQUIRE(shard.size() == 12);

  DataStream<int> full(shard);
  std::vector<int> ref;
  for (int i = 0; i < 50; ++i) ref.push_back(full.next());  // 4+ epochs
  CHECK(full.cursor() == DataCursor{4, 2});

  // Each epoch of the stream visits this rank's share of that epoch's permutation
  // (the share changes from epoch to epoch, as in PyTorch's DistributedSampler).
  for (std::uint64_t e = 0; e < 4; ++e) {
    const auto order = shard.epoch_order(e);
    for (std::size_t i = 0; i < 12; ++i) REQUIRE(ref[e * 12 + i] == items[order[i]]);
    CHECK(std::set<std::size_t>(order.begin(), order.end()).size() == 12);
  }
  CHECK(!std::equal(ref.begin(), ref.begin() + 12, ref.begin() + 12));

  for (int stop : {0, 1, 11, 12, 13, 30}) {
    DataStream<int> a(shard);
    for (int i = 0; i < stop; ++i) a.next();
    const json::Value saved = a.cursor().to_json();
    DataStream<int> b(shard, DataCursor::from_json(json::parse(json::dump(saved))));
    for (int i = stop; i < 50; ++i) REQUIRE(b.next() == ref[static_cast<std::size_t>(i)]);
  }

  // A cursor from another world size is caught when it points past the shard.
  DataStream<int> s(shard);
  CHECK_THROWS_WITH(s.seek({0, 13}), Contains("past the shard's end"));
}

// ---------------------------------------------------------------------------- packing

namespace {

// Random examples: prompt of p tokens (mask 0) then response of r tokens (mask 1);
// token ids encode (example, position) so targets can be traced back.
std::vector<TokenizedExample> make_examples(int n, int max_len, std::uint64_t seed) {
  Rng rng(seed);
  std::vector<TokenizedExample> ex(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    const int len = 1 + static_cast<int>(rng.below(static_cast<std::uint64_t>(max_len)));
    const int prompt = static_cast<int>(rng.below(static_cast<std::uint64_t>(len) + 1));
    for (int j = 0; j < len; ++j) {
      ex[static_cast<std::size_t>(i)].ids.push_back(i * 10000 + j);
      ex[static_cast<std::size_t>(i)].loss_mask.push_back(j >= prompt ? 1 : 0);
    }
  }
  return ex;
}

// Checks one built row against the examples it claims to hold.
void check_row(const std::vector<TokenizedExample>& ex, const PackPlan& plan, std::size_t r, const PackedRow& row,
               std::int64_t max_tokens) {
  const auto& members = plan.rows[r];
  const std::int64_t T = row.ids.numel();
  REQUIRE(T <= max_tokens);
  REQUIRE(row.cu_seqlens.numel() == static_cast<std::int64_t>(members.size()) + 1);
  const std::int32_t* ids = row.ids.data<std::int32_t>();
  const std::int32_t* tg = row.targets.data<std::int32_t>();
  const std::int32_t* pos = row.pos.data<std::int32_t>();
  const std::int32_t* cu = row.cu_seqlens.data<std::int32_t>();
  const float* mask = row.loss_mask.data<float>();
  CHECK(cu[0] == 0);
  CHECK(cu[members.size()] == T);
  std::int64_t loss = 0;
  for (std::size_t b = 0; b < members.size(); ++b) {
    const TokenizedExample& e = ex[members[b]];
    const std::int32_t begin = cu[b], end = cu[b + 1];
    REQUIRE(end - begin == plan.lengths[members[b]]);
    for (std::int32_t t = begin; t < end; ++t) {
      const auto j = static_cast<std::size_t>(t - begin);
      REQUIRE(ids[t] == e.ids[j]);
      REQUIRE(pos[t] == static_cast<std::int32_t>(j));
      const bool last = t + 1 == end;
      // Targets never cross an example: the next token of the same example.
      REQUIRE(tg[t] == (last ? ids[t] : e.ids[j + 1]));
      REQUIRE(tg[t] / 10000 == ids[t] / 10000);
      // Loss only where the target is a response token of this example.
      const float want = (!last && e.loss_mask[j + 1]) ? 1.0f : 0.0f;
      REQUIRE(mask[t] == want);
      loss += mask[t] != 0;
    }
  }
  CHECK(row.loss_tokens == loss);
}

}  // namespace

TEST_CASE("packing: greedy and FFD keep examples whole and rows within max_tokens", "[dataset]") {
  const auto ex = make_examples(300, 200, 17);
  for (PackStrategy strategy : {PackStrategy::Greedy, PackStrategy::FirstFitDecreasing}) {
    PackingOptions opts;
    opts.max_tokens = 256;
    opts.strategy = strategy;
    PackPlan plan;
    const auto rows = pack_examples(ex, opts, &plan);
    REQUIRE(rows.size() == plan.rows.size());
    std::vector<int> placed(ex.size(), 0);
    for (std::size_t r = 0; r < rows.size(); ++r) {
      check_row(ex, plan, r, rows[r], opts.max_tokens);
      for (std::size_t e : plan.rows[r]) ++placed[e];
    }
    CHECK(std::all_of(placed.begin(), placed.end(), [](int c) { return c == 1; }));  // each exactly once
    CHECK(plan.truncated == 0);
    CHECK(plan.fill() > 0.5);
    // Deterministic.
    const PackPlan again = plan_packing(ex, opts);
    CHECK(again.rows == plan.rows);
    if (strategy == PackStrategy::Greedy) {
      // In order: concatenating the rows gives 0, 1, 2, ...
      std::vector<std::size_t> flat;
      for (const auto& row : plan.rows) flat.insert(flat.end(), row.begin(), row.end());
      std::vector<std::size_t> iota(ex.size());
      std::iota(iota.begin(), iota.end(), std::size_t{0});
      CHECK(flat == iota);
    }
  }
  // FFD never needs more rows than greedy.
  PackingOptions g{.max_tokens = 256, .strategy = PackStrategy::Greedy};
  PackingOptions f{.max_tokens = 256, .strategy = PackStrategy::FirstFitDecreasing};
  CHECK(plan_packing(ex, f).rows.size() <= plan_packing(ex, g).rows.size());
}

TEST_CASE("packing: overlong examples truncate, drop or fail", "[dataset]") {
  std::vector<TokenizedExample> ex = make_examples(20, 50, 3);
  ex[5].ids.assign(300, 7);
  ex[5].loss_mask.assign(300, 1);
  PackingOptions opts;
  opts.max_tokens = 100;

  PackPlan plan;
  auto rows = pack_examples(ex, opts, &plan);
  CHECK(plan.truncated == 1);
  CHECK(plan.tokens_cut == 200);
  CHECK(plan.lengths[5] == 100);
  for (std::size_t r = 0; r < rows.size(); ++r) check_row(ex, plan, r, rows[r], opts.max_tokens);

  opts.overlong = Overlong::Drop;
  rows = pack_examples(ex, opts, &plan);
  CHECK(plan.dropped == 1);
  CHECK(plan.lengths[5] == 0);
  for (const auto& row : plan.rows) CHECK(std::find(row.begin(), row.end(), 5u) == row.end());

  opts.overlong = Overlong::Error;
  CHECK_THROWS_WITH(plan_packing(ex, opts), Contains("example 5 has 300 tokens, more than max_tokens = 100"));

  std::vector<TokenizedExample> bad(1);
  bad[0].ids = {1, 2};
  bad[0].loss_mask = {1};
  CHECK_THROWS_WITH(plan_packing(bad, {}), Contains("loss mask of 1"));
}

TEST_CASE("packing: a hand-checked row", "[dataset]") {
  // Example 0: prompt [1 2] response [3 4]; example 1: prompt [5] response [6].
  const std::vector<TokenizedExample> ex = {{{1, 2, 3, 4}, {0, 0, 1, 1}}, {{5, 6}, {0, 1}}};
  PackPlan plan;
  const auto rows = pack_examples(ex, {.max_tokens = 8}, &plan);
  REQUIRE(rows.size() == 1);
  const PackedRow& r = rows[0];
  auto v = [](const Tensor& t) { return std::vector<std::int32_t>(t.data<std::int32_t>(), t.data<std::int32_t>() + t.numel()); };
  CHECK(v(r.ids) == std::vector<std::int32_t>{1, 2, 3, 4, 5, 6});
  CHECK(v(r.targets) == std::vector<std::int32_t>{2, 3, 4, 4, 6, 6});
  CHECK(v(r.pos) == std::vector<std::int32_t>{0, 1, 2, 3, 0, 1});
  CHECK(v(r.cu_seqlens) == std::vector<std::int32_t>{0, 4, 6});
  const float* m = r.loss_mask.data<float>();
  CHECK(std::vector<float>(m, m + 6) == std::vector<float>{0, 1, 1, 0, 1, 0});
  CHECK(r.loss_tokens == 3);
}
