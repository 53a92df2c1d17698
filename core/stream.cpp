// core/stream.cpp: CPU no-op streams; CUDA streams in CUDA builds.
#include "core/stream.h"

#include <utility>

#include "core/error.h"

#ifdef CRUCIBLE_WITH_CUDA
#include <cuda_runtime.h>
#endif

namespace crucible {

Stream Stream::create(Device device) {
  Stream s;
  s.device_ = device;
  if (device.is_cpu()) return s;
#ifdef CRUCIBLE_WITH_CUDA
  cudaStream_t st = nullptr;
  cudaError_t e = cudaSetDevice(device.index);
  if (e == cudaSuccess) e = cudaStreamCreateWithFlags(&st, cudaStreamDefault);
  if (e != cudaSuccess) CRUCIBLE_FAIL("CUDA call failed: cudaStreamCreateWithFlags: ", cudaGetErrorString(e));
  s.handle_ = st;
  return s;
#else
  CRUCIBLE_FAIL("a CUDA stream was requested but this crucible was built without CUDA");
#endif
}

Stream Stream::default_for(Device device) {
  Stream s;
  s.device_ = device;
  return s;
}

Stream::~Stream() {
#ifdef CRUCIBLE_WITH_CUDA
  if (handle_) cudaStreamDestroy(static_cast<cudaStream_t>(handle_));
#endif
}

Stream::Stream(Stream&& other) noexcept
    : device_(other.device_), handle_(std::exchange(other.handle_, nullptr)) {}

Stream& Stream::operator=(Stream&& other) noexcept {
  if (this != &other) {
    this->~Stream();
    device_ = other.device_;
    handle_ = std::exchange(other.handle_, nullptr);
  }
  return *this;
}

void Stream::synchronize() const {
#ifdef CRUCIBLE_WITH_CUDA
  if (device_.is_cuda()) {
    cudaError_t e = cudaStreamSynchronize(static_cast<cudaStream_t>(handle_));
    if (e != cudaSuccess) CRUCIBLE_FAIL("CUDA call failed: cudaStreamSynchronize: ", cudaGetErrorString(e));
  }
#endif
}

}  // namespace crucible
