// trainer/zero.h: ZeRO-1 bookkeeping of one model over the ranks of a job.
//
// ZeRO-1 (Rajbhandari et al., "ZeRO", SC'20, §5.1 P_os): every rank keeps the AdamW
// moments of one block of the flat FP32 parameter buffer (dist/shard.h: equal blocks,
// the buffer padded to world * shard_elems). A step reduce_scatters the flat gradient
// buffer into the blocks, each rank updates its block of the (full, replicated)
// master weights, then all_gathers the parameters, so every rank ends the step with
// the same weights. Gradients stay full-size on every rank (ZeRO-1 shards the
// optimizer state only); after the reduce_scatter only this rank's block of the
// gradient arena holds reduced values.
//
// Invariants: the parameter and gradient arenas hold padded_elems() FP32 elements
// (ModelWeights::reserve_flat; padding zero in gradients, never read as parameters);
// pieces() tile this rank's real elements [range(rank)) in flat order, each inside
// one layout entry. With ReductionMode::Deterministic the reduce_scatter folds each
// element over ranks in rank order, exactly as all_reduce does, so every reduced
// gradient element has the bits of the unsharded run's.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/arena.h"
#include "dist/communicator.h"
#include "dist/shard.h"
#include "model/weights.h"

namespace crucible::trainer {

class ZeroShard {
 public:
  // The part of one layout entry that this rank owns.
  struct Piece {
    std::size_t entry;           // index in weights.layout().entries()
    std::int64_t flat_begin;     // first FP32 parameter element (flat index)
    std::int64_t n;              // elements
    std::int64_t entry_offset;   // flat_begin - the entry's first element
    std::int64_t shard_offset;   // flat_begin - this rank's padded block start
  };

  // Pads the weights' flat buffers (reserve_flat) to the shards of comm.world().
  ZeroShard(ModelWeights& weights, dist::Communicator& comm);

  const dist::FlatShards& shards() const { return shards_; }
  int rank() const { return rank_; }
  const std::vector<Piece>& pieces() const { return pieces_; }
  std::int64_t shard_elems() const { return shards_.shard_elems(); }

  // Sum of every rank's gradients into this rank's block of the gradient arena
  // (in place). Collective.
  void reduce_scatter_grads();
  // Σ g^2 per layout entry over the whole job, as the unsharded optimizer computes it
  // (sum_squares per entry): each rank sums its pieces, one all_reduce of one double
  // per entry. An entry split between ranks is summed in parts (rounding-level
  // difference from the unsharded sum). Collective.
  std::vector<double> entry_sum_squares();
  // Every rank's block of the parameter arena to every rank. Collective.
  void all_gather_params();

  // Full-layout moments (moment_layout: the parameter layout in the moments' dtype)
  // from every rank's [shard_elems] shard, complete on `root`; the other ranks return
  // empty arenas. Each rank broadcasts its shard in turn (the Communicator has no
  // gather), so a non-root rank holds one extra shard, never the full moments.
  // Collective.
  Arena gather_to_root(const Tensor& shard, const Layout& moment_layout, int root, const std::string& name);

  // Views into the weights' padded flat buffers: [padded_elems] FP32.
  Tensor flat_params();
  Tensor flat_grads();

 private:
  ModelWeights& w_;
  dist::Communicator& comm_;
  dist::FlatShards shards_;
  int rank_;
  std::vector<Piece> pieces_;
};

}  // namespace crucible::trainer
