// dist/shard.h: shard arithmetic for ZeRO-1 over flat buffers and for batches.
//
// ZeRO-1 (Rajbhandari et al., "ZeRO", SC'20, §5.1 P_os): each rank keeps the optimizer
// state and FP32 master weights of one contiguous block of the flat parameter buffer.
// Gradients are reduce_scattered into the blocks, each rank steps its block, and the
// updated parameters are all_gathered. Both collectives need equal blocks, so the
// buffer is padded to world * shard_elems elements: every rank's block has the same
// size (balanced: equal work, padding included), starts at a multiple of `align`
// elements (64 FP32 = 256 bytes, the Layout alignment), and the padding is less than
// world * align. The padding is zero in gradients and ignored by the optimizer; the
// caller allocates the flat buffers with padded_elems() elements.
//
// Batches: rank r takes the global indices r, r + world, r + 2 world, ... (strided),
// so counts differ by at most one and sequence lengths mix across ranks.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "core/arena.h"

namespace crucible::dist {

// Half-open element range [begin, end).
struct Range {
  std::int64_t begin = 0;
  std::int64_t end = 0;
  std::int64_t size() const { return end - begin; }
  bool empty() const { return end <= begin; }
  friend bool operator==(const Range&, const Range&) = default;
};

class FlatShards {
 public:
  static constexpr std::int64_t kDefaultAlign = 64;

  // total >= 0 elements over world >= 1 ranks, blocks a multiple of align >= 1 elements.
  FlatShards(std::int64_t total, int world, std::int64_t align = kDefaultAlign);

  std::int64_t total() const { return total_; }
  int world() const { return world_; }
  std::int64_t align() const { return align_; }
  std::int64_t shard_elems() const { return shard_; }            // every rank's block
  std::int64_t padded_elems() const { return shard_ * world_; }  // >= total
  std::int64_t padding() const { return padded_elems() - total_; }

  // The block reduce_scatter / all_gather give rank r: [r * shard, (r+1) * shard).
  Range padded_range(int rank) const;
  // The real elements in it: padded_range clipped to [0, total) (may be empty).
  Range range(int rank) const;
  // The rank whose block holds flat element `index` (0 <= index < padded_elems).
  int owner(std::int64_t index) const;

  // A part of a flat span that one rank owns.
  struct Piece {
    int rank;
    Range elems;                // flat element indices
    std::int64_t shard_offset;  // elems.begin - padded_range(rank).begin
    std::int64_t span_offset;   // elems.begin - span.begin
  };
  // The pieces of span (inside [0, padded_elems)) by owner, in rank order; they tile it.
  std::vector<Piece> split(Range span) const;

 private:
  void check_rank(int rank) const;
  std::int64_t total_;
  int world_;
  std::int64_t align_;
  std::int64_t shard_;
};

// Layouts in elements. A flat buffer's layout has one dtype (FP32 master weights,
// gradients, moments); its byte offsets are then element offsets times the size.
std::int64_t layout_elems(const Layout& layout);  // total_bytes / element size; checks one dtype
Range entry_elems(const Layout::Entry& entry);    // [offset / size, + numel)
FlatShards flat_shards(const Layout& layout, int world,
                       std::int64_t align = FlatShards::kDefaultAlign);
// Which ranks own which parts of a named tensor (span_offset = element offset in it).
std::vector<FlatShards::Piece> entry_owners(const FlatShards& shards, const Layout::Entry& entry);
std::vector<FlatShards::Piece> entry_owners(const FlatShards& shards, const Layout& layout,
                                            std::string_view name);
// Indices of the layout entries with at least one element in rank's block, in order.
std::vector<std::size_t> entries_of_rank(const FlatShards& shards, const Layout& layout, int rank);

// Batches of `total` items over `world` ranks, strided.
std::int64_t strided_count(std::int64_t total, int world,
                           int rank);  // ceil or floor of total/world
std::vector<std::int64_t> strided_indices(std::int64_t total, int world, int rank);
int strided_owner(std::int64_t index, int world);           // index % world
std::int64_t strided_local(std::int64_t index, int world);  // index / world: position on its owner

}  // namespace crucible::dist
