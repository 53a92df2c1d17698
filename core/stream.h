// core/stream.h: an ordered queue of device work.
//
// On the CPU every op runs synchronously and a Stream is a no-op handle. On CUDA it
// owns a cudaStream_t; ops take the Stream they run on, so the trainer can overlap
// communication and compute by choosing streams, never by hidden global state.
#pragma once

#include "core/dtype.h"

namespace crucible {

class Stream {
 public:
  Stream() = default;  // the CPU stream
  // A new CUDA stream, or the CPU stream. CUDA streams are blocking: ordered with the
  // device's legacy default stream, on which tensors are allocated and freed.
  static Stream create(Device device);
  // The device's default stream (CUDA's legacy stream, handle nullptr): where ops run
  // when given Stream(), ordered with all blocking work on the device. Not owned.
  static Stream default_for(Device device);
  // A new CUDA stream NOT ordered with the legacy default stream, so that its work
  // (e.g. a gradient all-reduce) runs while the default stream's ops do; order the two
  // with wait_for. The CPU stream on the CPU.
  static Stream create_concurrent(Device device);
  ~Stream();
  Stream(Stream&& other) noexcept;
  Stream& operator=(Stream&& other) noexcept;
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  Device device() const { return device_; }
  void* handle() const { return handle_; }  // cudaStream_t on CUDA; nullptr on the CPU
  void synchronize() const;
  // Work enqueued on this stream from now on waits for the work enqueued on `other` so
  // far (a CUDA event between them). Nothing on the CPU, where every op has finished.
  void wait_for(const Stream& other) const;

 private:
  Device device_ = Device::cpu();
  void* handle_ = nullptr;
};

}  // namespace crucible
