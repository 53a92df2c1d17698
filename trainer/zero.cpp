// trainer/zero.cpp: ZeRO-1 blocks of a model's flat buffers and their collectives.
//
// Reference: ZeRO (Rajbhandari et al., SC'20) §5.1; dist/shard.h for the block
// arithmetic; DESIGN.md §6.
#include "trainer/zero.h"

#include <algorithm>

#include "core/error.h"
#include "kernels/adamw.h"

namespace crucible::trainer {

namespace {
Stream stream_of(const Tensor& t) { return Stream::default_for(t.device()); }
}  // namespace

ZeroShard::ZeroShard(ModelWeights& weights, dist::Communicator& comm)
    : w_(weights), comm_(comm), shards_(dist::flat_shards(weights.layout(), comm.world())), rank_(comm.rank()) {
  CRUCIBLE_CHECK(w_.has_grads(), "ZeRO-1 needs a gradient arena");
  CRUCIBLE_CHECK(w_.layout().entries().front().dtype == DType::F32, "ZeRO-1 shards FP32 master weights");
  w_.reserve_flat(static_cast<std::size_t>(shards_.padded_elems()) * sizeof(float));
  const dist::Range block = shards_.padded_range(rank_);
  const auto& entries = w_.layout().entries();
  for (const std::size_t i : dist::entries_of_rank(shards_, w_.layout(), rank_)) {
    const dist::Range e = dist::entry_elems(entries[i]);
    const std::int64_t begin = std::max(e.begin, block.begin), end = std::min(e.end, block.end);
    pieces_.push_back({i, begin, end - begin, begin - e.begin, begin - block.begin});
  }
}

Tensor ZeroShard::flat_params() { return w_.params().flat_elems(DType::F32, shards_.padded_elems()); }
Tensor ZeroShard::flat_grads() { return w_.grads().flat_elems(DType::F32, shards_.padded_elems()); }

void ZeroShard::reduce_scatter_grads() {
  const Tensor all = flat_grads();  // [world * shard] FP32, padding zero
  const dist::Range mine = shards_.padded_range(rank_);
  Tensor block = all.slice(mine.begin, mine.end);
  comm_.reduce_scatter(all, block, dist::ReduceOp::Sum, stream_of(all));
}

std::vector<double> ZeroShard::entry_sum_squares() {
  const auto& entries = w_.layout().entries();
  std::vector<double> sq(entries.size(), 0.0);
  const Tensor g = flat_grads();
  for (const Piece& p : pieces_) sq[p.entry] += ops::sum_squares(g.slice(p.flat_begin, p.flat_begin + p.n), stream_of(g));
  // Rank-ordered fold: an entry that one rank owns keeps its bits (0 + x = x).
  comm_.all_reduce_f64(std::span<double>(sq), dist::ReduceOp::Sum);
  return sq;
}

void ZeroShard::all_gather_params() {
  Tensor all = flat_params();
  const dist::Range mine = shards_.padded_range(rank_);
  const Tensor block = all.slice(mine.begin, mine.end);
  comm_.all_gather(block, all, stream_of(all));
}

Arena ZeroShard::gather_to_root(const Tensor& shard, const Layout& moment_layout, int root, const std::string& name) {
  CRUCIBLE_CHECK(shard.numel() == shards_.shard_elems(), "gather of a ", shard.numel(),
                 "-element shard; ZeRO-1 blocks hold ", shards_.shard_elems());
  CRUCIBLE_CHECK(moment_layout.entries().size() == w_.layout().entries().size(),
                 "moment layout does not match the parameters'");
  const bool me_root = rank_ == root;
  Arena full;
  if (me_root) {
    full = Arena(moment_layout, shard.device(), name);
    full.zero();
  }
  Tensor buf(Shape{shards_.shard_elems()}, shard.dtype(), shard.device(), name + ".gather");
  const auto& entries = w_.layout().entries();
  for (int r = 0; r < comm_.world(); ++r) {
    if (r == rank_) buf.copy_from(shard);
    comm_.broadcast(buf, r, stream_of(buf));
    if (!me_root) continue;
    for (const std::size_t i : dist::entries_of_rank(shards_, w_.layout(), r)) {
      Tensor dst = full.view(i);
      dst = dst.reshape(Shape{dst.numel()});
      for (const dist::FlatShards::Piece& p : dist::entry_owners(shards_, entries[i])) {
        if (p.rank != r) continue;
        dst.slice(p.span_offset, p.span_offset + p.elems.size())
            .copy_from(buf.slice(p.shard_offset, p.shard_offset + p.elems.size()));
      }
    }
  }
  return full;
}

}  // namespace crucible::trainer
