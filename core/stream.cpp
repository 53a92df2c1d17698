// core/stream.cpp: CPU no-op streams; CUDA streams in CUDA builds.
#include "core/stream.h"

#include <utility>

#include "core/error.h"

#ifdef CRUCIBLE_WITH_CUDA
#include <cuda_runtime.h>
#endif

namespace crucible {

namespace {

#ifdef CRUCIBLE_WITH_CUDA
void check(cudaError_t e, const char* call) {
  if (e != cudaSuccess) CRUCIBLE_FAIL("CUDA call failed: ", call, ": ", cudaGetErrorString(e));
}
#endif

// A new stream on the CUDA device `device`: blocking (ordered with the legacy default
// stream) or not.
void* new_cuda_stream(Device device, bool non_blocking) {
#ifdef CRUCIBLE_WITH_CUDA
  cudaStream_t st = nullptr;
  check(cudaSetDevice(device.index), "cudaSetDevice");
  check(cudaStreamCreateWithFlags(&st, non_blocking ? cudaStreamNonBlocking : cudaStreamDefault),
        "cudaStreamCreateWithFlags");
  return st;
#else
  (void)device, (void)non_blocking;
  CRUCIBLE_FAIL("a CUDA stream was requested but this crucible was built without CUDA");
#endif
}

}  // namespace

Stream Stream::create(Device device) {
  Stream s = default_for(device);
  if (device.is_cuda()) s.handle_ = new_cuda_stream(device, false);
  return s;
}

Stream Stream::create_concurrent(Device device) {
  Stream s = default_for(device);
  if (device.is_cuda()) s.handle_ = new_cuda_stream(device, true);
  return s;
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

void Stream::wait_for(const Stream& other) const {
#ifdef CRUCIBLE_WITH_CUDA
  if (!device_.is_cuda() || handle_ == other.handle_) return;
  CRUCIBLE_CHECK(other.device_ == device_, "Stream::wait_for: streams on ", device_.str(), " and ",
                 other.device_.str());
  check(cudaSetDevice(device_.index), "cudaSetDevice");
  cudaEvent_t ev = nullptr;
  check(cudaEventCreateWithFlags(&ev, cudaEventDisableTiming), "cudaEventCreateWithFlags");
  const cudaError_t recorded = cudaEventRecord(ev, static_cast<cudaStream_t>(other.handle_));
  const cudaError_t waited =
      recorded == cudaSuccess ? cudaStreamWaitEvent(static_cast<cudaStream_t>(handle_), ev, 0) : recorded;
  cudaEventDestroy(ev);  // released once the wait has been satisfied
  check(waited, "cudaEventRecord/cudaStreamWaitEvent");
#else
  (void)other;
#endif
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
