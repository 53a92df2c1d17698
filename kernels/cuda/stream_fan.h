// kernels/cuda/stream_fan.h: independent work of one op spread over a few streams.
//
// A grouped GEMM run as one cuBLASLt call per group (DeepSeekMoE experts) leaves most
// of the GPU idle when each group is small: an expert of 1024 rows x 1024 columns is 64
// output tiles on 132 SMs. StreamFan forks side streams from the op's stream, the
// op puts group g on side(g), and the destructor joins them back, so the groups' GEMMs
// overlap. Results keep their bits: each group writes its own output with the GEMM it
// would run on one stream (cuBLASLt keeps a workspace per stream).
//
// Invariants: work enqueued on a side stream runs after everything enqueued on `main`
// before the fork; everything enqueued on `main` after the join runs after all of it.
// Buffers the side work reads must outlive the join (declare them before the fan).
// The side streams are per device, made once, not ordered with the legacy default
// stream; one host thread per device at a time (as the rest of the CUDA backend).
#pragma once

#include <cuda_runtime.h>

namespace crucible::cuda {

class StreamFan {
 public:
  static constexpr int kMaxSides = 4;

  // Forks `sides` (1 .. kMaxSides) side streams of the current device from `main`.
  StreamFan(cudaStream_t main, int sides);
  ~StreamFan();  // joins: no throw
  StreamFan(const StreamFan&) = delete;
  StreamFan& operator=(const StreamFan&) = delete;

  // The side stream for item i (round robin).
  cudaStream_t side(std::size_t i) const { return sides_[i % static_cast<std::size_t>(n_)]; }

 private:
  cudaStream_t main_;
  int n_;
  cudaStream_t sides_[kMaxSides] = {};
  cudaEvent_t events_[kMaxSides + 1] = {};  // [0]: the fork; [1 + s]: side s's join
};

}  // namespace crucible::cuda
