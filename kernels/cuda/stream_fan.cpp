// kernels/cuda/stream_fan.cpp: per-device side streams and the fork/join events.
#include "kernels/cuda/stream_fan.h"

#include <algorithm>
#include <mutex>
#include <unordered_map>

#include "core/cuda_check.h"

namespace crucible::cuda {

namespace {

// A device's side streams and events, made on first use and never destroyed (as
// CublasLtContext: a static destructor would run after the CUDA runtime's teardown).
struct Sides {
  cudaStream_t streams[StreamFan::kMaxSides];
  cudaEvent_t events[StreamFan::kMaxSides + 1];
};

Sides& sides_of_current_device() {
  static std::mutex mutex;
  static std::unordered_map<int, Sides*> all;
  int device = 0;
  CHECK_CUDA(cudaGetDevice(&device));
  std::lock_guard<std::mutex> lock(mutex);
  Sides*& s = all[device];
  if (!s) {
    auto* made = new Sides{};
    for (cudaStream_t& st : made->streams) CHECK_CUDA(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
    for (cudaEvent_t& ev : made->events) CHECK_CUDA(cudaEventCreateWithFlags(&ev, cudaEventDisableTiming));
    s = made;
  }
  return *s;
}

}  // namespace

StreamFan::StreamFan(cudaStream_t main, int sides) : main_(main), n_(std::clamp(sides, 1, kMaxSides)) {
  Sides& s = sides_of_current_device();
  std::copy(s.streams, s.streams + kMaxSides, sides_);
  std::copy(s.events, s.events + kMaxSides + 1, events_);
  // An event may be recorded again once the waits on it are enqueued: they keep the
  // state it had when they were.
  CHECK_CUDA(cudaEventRecord(events_[0], main_));
  for (int i = 0; i < n_; ++i) CHECK_CUDA(cudaStreamWaitEvent(sides_[i], events_[0], 0));
}

StreamFan::~StreamFan() {
  for (int i = 0; i < n_; ++i) {
    cudaEventRecord(events_[1 + i], sides_[i]);
    cudaStreamWaitEvent(main_, events_[1 + i], 0);
  }
}

}  // namespace crucible::cuda
