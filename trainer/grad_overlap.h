// trainer/grad_overlap.h: the data-parallel gradient sum, overlapped with backward.
//
// Unsharded data parallelism sums the flat gradient buffer over the ranks before the
// update (optimizer.h). Most of that sum need not wait for backward to end: layer l's
// gradients are final once the update's last backward has passed layer l (backward
// runs the layers last to first). GradOverlap cuts the flat buffer into one bucket per
// decoder layer, the layer's contiguous range of the layout, and while armed
// all-reduces bucket l on its own concurrent stream as soon as backward reports layer
// l done (ForwardState::layer_grads_done), so the reduction of the late layers runs
// under the backward of the early ones. finish(), called by the optimizer step,
// reduces what is left (the buckets a rank's backward did not report, the embedding,
// head, final norm, MTP module and padding) and orders the default stream after it.
//
// Invariants:
//   - Each gradient element is reduced exactly once per update, by the communicator's
//     all_reduce (Sum). Its deterministic fold is elementwise, in rank order, so every
//     reduced element has the bits of one all_reduce of the whole flat buffer. (Native
//     NCCL reductions may round differently: their order depends on message sizes.)
//   - Every rank issues the same collectives in the same order: buckets L-1 .. 0, then
//     the rest. A rank whose hook fired reduced its buckets during backward; one with
//     no backward this update (no examples) reduces them in finish(), in that order.
//     Nothing between a rank's last backward and its step may issue another collective
//     on the communicator (the trainer's loops issue none there).
//   - A bucket reported twice in one update (a backward after the armed "last" one)
//     is an error: its reduction would have missed the later gradient.
// On the CPU every collective is synchronous: the same result, without overlap.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "core/stream.h"
#include "model/weights.h"

namespace crucible::dist {
class Communicator;
}

namespace crucible::trainer {

class GradOverlap {
 public:
  GradOverlap(ModelWeights& weights, dist::Communicator& comm);

  // For ForwardState::layer_grads_done of the update's last backward on this rank:
  // each call reduces layer l's bucket, on the concurrent stream.
  std::function<void(std::int64_t)> hook();
  // Reduces every element the hook has not reduced this update, then makes the
  // default stream wait for all the reductions. Collective; every rank calls it once
  // per update.
  void finish();

  // Layers with a bucket of their own (a layer whose tensors are not contiguous in the
  // layout is reduced with the rest).
  std::int64_t buckets() const;

 private:
  struct Range {
    std::int64_t begin = 0, end = 0;  // flat FP32 gradient elements
    bool empty() const { return end <= begin; }
  };
  void reduce(const Range& r);

  ModelWeights& w_;
  dist::Communicator& comm_;
  Stream stream_;                 // concurrent with the device's default stream
  std::vector<Range> layer_;      // bucket of layer l (empty: with the rest)
  std::vector<Range> rest_;       // the flat elements of no bucket, in order
  std::vector<bool> done_;        // bucket l reduced this update
};

}  // namespace crucible::trainer
