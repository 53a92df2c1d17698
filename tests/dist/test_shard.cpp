// ZeRO-1 block arithmetic, Layout entries mapped to their owners, strided batches.
//
// Invariant under test: padded blocks tile [0, padded) in rank order, equal and
// aligned, padding < world * align; entry pieces tile each entry; strided batch
// indices partition the batch with counts differing by at most one.
// Reference: dist/shard.h; shapes of the shipped presets (configs/models/).
#include <numeric>
#include <set>

#include "dist/shard.h"
#include "launch/model_config_fields.h"
#include "model/weights.h"
#include "tests/catch.h"

using namespace crucible;
using namespace crucible::dist;

namespace {

// Flat buffer sizes: tiny cases, sizes around a block boundary, and parameter counts
// of real models (Qwen2.5-0.5B, Llama-3.1-8B, about DeepSeek-V3's 671B).
const std::int64_t kTotals[] = {0,         1,          63,          64, 65, 1000, 4096 * 3 + 1,
                                494032768, 8030261248, 671026419200};
const int kWorlds[] = {1, 2, 3, 7, 8, 64, 1024};
const std::int64_t kAligns[] = {1, 64, 128};

void check_blocks(const FlatShards& s) {
  INFO("total " << s.total() << " world " << s.world() << " align " << s.align());
  REQUIRE(s.shard_elems() % s.align() == 0);
  REQUIRE(s.padded_elems() == s.shard_elems() * s.world());
  REQUIRE(s.padded_elems() >= s.total());
  REQUIRE(s.padding() < s.world() * s.align());
  std::int64_t next = 0, real = 0;
  for (int r = 0; r < s.world(); ++r) {
    const Range p = s.padded_range(r), q = s.range(r);
    REQUIRE(p.begin == next);
    REQUIRE(p.size() == s.shard_elems());
    REQUIRE(p.begin % s.align() == 0);
    REQUIRE(q.begin == std::min(p.begin, s.total()));
    REQUIRE(q.end == std::min(p.end, s.total()));
    if (p.size() > 0) {
      REQUIRE(s.owner(p.begin) == r);
      REQUIRE(s.owner(p.end - 1) == r);
    }
    next = p.end;
    real += q.size();
  }
  REQUIRE(next == s.padded_elems());
  REQUIRE(real == s.total());
}

}  // namespace

TEST_CASE("ZeRO blocks are equal, aligned, tile the padded buffer; padding < world x align",
          "[dist]") {
  for (std::int64_t total : kTotals)
    for (int world : kWorlds)
      for (std::int64_t align : kAligns) check_blocks(FlatShards(total, world, align));
}

TEST_CASE("ZeRO blocks: worked examples", "[dist]") {
  const FlatShards a(100, 4, 64);  // one aligned group per rank suffices for 100 elements
  REQUIRE(a.shard_elems() == 64);
  REQUIRE(a.padded_elems() == 256);
  REQUIRE(a.padding() == 156);
  REQUIRE(a.range(0) == Range{0, 64});
  REQUIRE(a.range(1) == Range{64, 100});
  REQUIRE(a.range(2).empty());
  REQUIRE(a.padded_range(3) == Range{192, 256});

  const FlatShards b(1000, 3, 1);  // unaligned: ceil(1000 / 3)
  REQUIRE(b.shard_elems() == 334);
  REQUIRE(b.padding() == 2);
  REQUIRE(b.range(2) == Range{668, 1000});

  const FlatShards c(0, 2, 64);
  REQUIRE(c.shard_elems() == 0);
  REQUIRE(c.split({0, 0}).empty());

  REQUIRE_THROWS_WITH(FlatShards(10, 0, 64), Catch::Contains("world of 0"));
  REQUIRE_THROWS_WITH(FlatShards(10, 2, 0), Catch::Contains("alignment 0"));
  REQUIRE_THROWS_WITH(a.padded_range(4), Catch::Contains("rank 4 is not in a world of 4"));
  REQUIRE_THROWS_WITH(a.owner(256), Catch::Contains("outside the padded buffer"));
}

TEST_CASE("split tiles a span by owner, in rank order", "[dist]") {
  const FlatShards s(1000, 3, 64);  // blocks of 384
  const auto pieces = s.split({300, 900});
  REQUIRE(pieces.size() == 3);
  REQUIRE(pieces[0].rank == 0);
  REQUIRE(pieces[0].elems == Range{300, 384});
  REQUIRE(pieces[0].shard_offset == 300);
  REQUIRE(pieces[0].span_offset == 0);
  REQUIRE(pieces[1].elems == Range{384, 768});
  REQUIRE(pieces[1].shard_offset == 0);
  REQUIRE(pieces[1].span_offset == 84);
  REQUIRE(pieces[2].elems == Range{768, 900});
  REQUIRE(pieces[2].span_offset == 468);
  const auto one = s.split({400, 401});
  REQUIRE(one.size() == 1);
  REQUIRE(one[0].rank == 1);
  REQUIRE(one[0].shard_offset == 16);
}

TEST_CASE("Layout entries map to the ranks that own them (Qwen2.5-7B parameters)", "[dist]") {
  const ModelConfig config = launch::load_model_config(std::string(CRUCIBLE_SOURCE_DIR) +
                                                       "/configs/models/qwen2.5-7b.toml");
  const Layout layout = make_param_layout(config);  // offsets only; nothing allocated
  const std::int64_t elems = layout_elems(layout);
  REQUIRE(elems * 4 == static_cast<std::int64_t>(layout.total_bytes()));
  for (int world : {1, 3, 8, 64}) {
    const FlatShards s = flat_shards(layout, world);
    INFO("world " << world);
    REQUIRE(s.total() == elems);
    std::vector<std::set<std::size_t>> per_rank(static_cast<std::size_t>(world));
    for (std::size_t i = 0; i < layout.entries().size(); ++i) {
      const Layout::Entry& e = layout.entries()[i];
      const Range span = entry_elems(e);
      const auto pieces = entry_owners(s, e);
      REQUIRE(!pieces.empty());
      std::int64_t covered = 0;
      int last_rank = -1;
      for (const auto& p : pieces) {
        REQUIRE(p.rank > last_rank);
        REQUIRE(p.span_offset == covered);
        REQUIRE(p.elems.begin == span.begin + covered);
        REQUIRE(p.elems.begin - s.padded_range(p.rank).begin == p.shard_offset);
        covered += p.elems.size();
        last_rank = p.rank;
        per_rank[p.rank].insert(i);
      }
      REQUIRE(covered == e.shape.numel());
    }
    for (int r = 0; r < world; ++r) {
      const auto mine = entries_of_rank(s, layout, r);
      REQUIRE(std::set<std::size_t>(mine.begin(), mine.end()) == per_rank[r]);
    }
  }
  const auto embed = entry_owners(flat_shards(layout, 8), layout, "model.embed_tokens.weight");
  REQUIRE(embed.front().rank == 0);
  REQUIRE(embed.front().span_offset == 0);

  Layout mixed;
  mixed.add("a", Shape{4}, DType::F32);
  mixed.add("b", Shape{4}, DType::BF16);
  REQUIRE_THROWS_WITH(layout_elems(mixed), Catch::Contains("one dtype per layout"));
}

TEST_CASE("strided batch sharding partitions the batch; counts differ by at most one", "[dist]") {
  for (std::int64_t total : {0, 1, 5, 64, 1000, 1001}) {
    for (int world : {1, 2, 3, 8, 13}) {
      INFO("total " << total << " world " << world);
      std::vector<int> seen(static_cast<std::size_t>(total), 0);
      std::int64_t lo = total, hi = 0, sum = 0;
      for (int r = 0; r < world; ++r) {
        const auto idx = strided_indices(total, world, r);
        REQUIRE(static_cast<std::int64_t>(idx.size()) == strided_count(total, world, r));
        for (std::size_t k = 0; k < idx.size(); ++k) {
          REQUIRE(idx[k] == r + static_cast<std::int64_t>(k) * world);
          REQUIRE(strided_owner(idx[k], world) == r);
          REQUIRE(strided_local(idx[k], world) == static_cast<std::int64_t>(k));
          ++seen[idx[k]];
        }
        lo = std::min<std::int64_t>(lo, idx.size());
        hi = std::max<std::int64_t>(hi, idx.size());
        sum += static_cast<std::int64_t>(idx.size());
      }
      REQUIRE(sum == total);
      REQUIRE(hi - lo <= 1);
      for (int s : seen) REQUIRE(s == 1);
    }
  }
  REQUIRE(strided_indices(10, 4, 1) == std::vector<std::int64_t>{1, 5, 9});
  REQUIRE(strided_count(10, 4, 3) == 2);
  REQUIRE_THROWS(strided_count(10, 4, 4));
}
