// dist/shard.cpp: ZeRO-1 blocks of a flat buffer, Layout entries mapped to their
// owners, and strided batch sharding.
//
// Invariant: the padded blocks of ranks 0..world-1 tile [0, padded_elems) in order,
// each shard_elems long (a multiple of align), with padding < world * align; the
// strided batch indices of all ranks partition [0, total).
// Reference: ZeRO (Rajbhandari et al., SC'20) §5.1; DESIGN.md §2 (flat buffers), §6.
#include "dist/shard.h"

#include <algorithm>

namespace crucible::dist {

FlatShards::FlatShards(std::int64_t total, int world, std::int64_t align)
    : total_(total), world_(world), align_(align) {
  CRUCIBLE_CHECK(total >= 0, "flat shards of a negative size ", total);
  CRUCIBLE_CHECK(world >= 1, "flat shards over a world of ", world);
  CRUCIBLE_CHECK(align >= 1, "flat shards with alignment ", align);
  const std::int64_t unit = align * world;  // one aligned element group per rank
  shard_ = (total + unit - 1) / unit * align;
}

void FlatShards::check_rank(int rank) const {
  CRUCIBLE_CHECK(rank >= 0 && rank < world_, "rank ", rank, " is not in a world of ", world_);
}

Range FlatShards::padded_range(int rank) const {
  check_rank(rank);
  return {rank * shard_, (rank + 1) * shard_};
}

Range FlatShards::range(int rank) const {
  const Range p = padded_range(rank);
  return {std::min(p.begin, total_), std::min(p.end, total_)};
}

int FlatShards::owner(std::int64_t index) const {
  CRUCIBLE_CHECK(index >= 0 && index < padded_elems(), "element ", index,
                 " is outside the padded buffer of ", padded_elems());
  return static_cast<int>(index / shard_);
}

std::vector<FlatShards::Piece> FlatShards::split(Range span) const {
  CRUCIBLE_CHECK(span.begin >= 0 && span.begin <= span.end && span.end <= padded_elems(), "span [",
                 span.begin, ", ", span.end, ") is outside the padded buffer of ", padded_elems());
  std::vector<Piece> out;
  if (span.empty()) return out;
  for (int r = owner(span.begin); r <= owner(span.end - 1); ++r) {
    const Range block = padded_range(r);
    const Range e{std::max(span.begin, block.begin), std::min(span.end, block.end)};
    out.push_back({r, e, e.begin - block.begin, e.begin - span.begin});
  }
  return out;
}

std::int64_t layout_elems(const Layout& layout) {
  const auto& entries = layout.entries();
  if (entries.empty()) return 0;
  const DType t = entries.front().dtype;
  for (const Layout::Entry& e : entries)
    CRUCIBLE_CHECK(e.dtype == t, "flat sharding needs one dtype per layout; '", e.name, "' is ",
                   dtype_name(e.dtype), ", '", entries.front().name, "' is ", dtype_name(t));
  const std::size_t es = dtype_size(t);
  CRUCIBLE_CHECK(layout.total_bytes() % es == 0, "layout of ", layout.total_bytes(),
                 " bytes is not a whole number of ", dtype_name(t), " elements");
  return static_cast<std::int64_t>(layout.total_bytes() / es);
}

Range entry_elems(const Layout::Entry& entry) {
  const std::size_t es = dtype_size(entry.dtype);
  CRUCIBLE_CHECK(entry.offset % es == 0, "entry '", entry.name, "' at byte ", entry.offset,
                 " is not aligned to its ", dtype_name(entry.dtype), " elements");
  const auto begin = static_cast<std::int64_t>(entry.offset / es);
  return {begin, begin + entry.shape.numel()};
}

FlatShards flat_shards(const Layout& layout, int world, std::int64_t align) {
  return FlatShards(layout_elems(layout), world, align);
}

std::vector<FlatShards::Piece> entry_owners(const FlatShards& shards, const Layout::Entry& entry) {
  return shards.split(entry_elems(entry));
}

std::vector<FlatShards::Piece> entry_owners(const FlatShards& shards, const Layout& layout,
                                            std::string_view name) {
  return entry_owners(shards, layout.at(name));
}

std::vector<std::size_t> entries_of_rank(const FlatShards& shards, const Layout& layout, int rank) {
  const Range mine = shards.range(rank);
  std::vector<std::size_t> out;
  const auto& entries = layout.entries();
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const Range e = entry_elems(entries[i]);
    if (std::max(e.begin, mine.begin) < std::min(e.end, mine.end)) out.push_back(i);
  }
  return out;
}

std::int64_t strided_count(std::int64_t total, int world, int rank) {
  CRUCIBLE_CHECK(total >= 0 && world >= 1 && rank >= 0 && rank < world, "strided shard of ", total,
                 " items for rank ", rank, " of ", world);
  return total / world + (rank < total % world ? 1 : 0);
}

std::vector<std::int64_t> strided_indices(std::int64_t total, int world, int rank) {
  std::vector<std::int64_t> out;
  out.reserve(static_cast<std::size_t>(strided_count(total, world, rank)));
  for (std::int64_t i = rank; i < total; i += world) out.push_back(i);
  return out;
}

int strided_owner(std::int64_t index, int world) {
  CRUCIBLE_CHECK(index >= 0 && world >= 1, "strided owner of item ", index, " in a world of ",
                 world);
  return static_cast<int>(index % world);
}

std::int64_t strided_local(std::int64_t index, int world) {
  CRUCIBLE_CHECK(index >= 0 && world >= 1, "strided position of item ", index, " in a world of ",
                 world);
  return index / world;
}

}  // namespace crucible::dist
