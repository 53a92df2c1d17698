// kernels/cuda/cublaslt_context.cpp: per-device cuBLASLt handle, workspaces and scratch pool.
#include "kernels/cuda/cublaslt_context.h"

#include <cstdint>
#include <utility>

#include "core/cuda_check.h"

namespace crucible::cuda {

CublasLtContext::CublasLtContext(int device) : device_(device) {
  cudaDeviceProp prop{};
  CHECK_CUDA(cudaGetDeviceProperties(&prop, device));
  cc_major_ = prop.major;
  cc_minor_ = prop.minor;
  CHECK_CUBLAS(cublasLtCreate(&handle_));
  cudaMemPoolProps props{};
  props.allocType = cudaMemAllocationTypePinned;
  props.location.type = cudaMemLocationTypeDevice;
  props.location.id = device;
  CHECK_CUDA(cudaMemPoolCreate(&pool_, &props));
  // NOTE: keep freed blocks in the pool (the default threshold 0 hands them back to the
  // driver at every synchronization, and the next GEMM would pay for fresh mappings).
  std::uint64_t keep = UINT64_MAX;
  CHECK_CUDA(cudaMemPoolSetAttribute(pool_, cudaMemPoolAttrReleaseThreshold, &keep));
}

CublasLtContext& CublasLtContext::current() {
  static std::mutex mutex;
  static std::unordered_map<int, CublasLtContext*> contexts;  // never freed (see header)
  int device = 0;
  CHECK_CUDA(cudaGetDevice(&device));
  std::lock_guard<std::mutex> lock(mutex);
  CublasLtContext*& ctx = contexts[device];
  if (!ctx) ctx = new CublasLtContext(device);
  return *ctx;
}

void* CublasLtContext::workspace(cudaStream_t stream) {
  std::lock_guard<std::mutex> lock(mutex_);
  void*& ws = workspaces_[stream];
  if (!ws) CHECK_CUDA(cudaMalloc(&ws, kWorkspaceBytes));  // cudaMalloc aligns to 256 bytes
  return ws;
}

DeviceScratch::DeviceScratch(std::size_t bytes, cudaStream_t stream) : stream_(stream) {
  if (bytes == 0) return;
  CHECK_CUDA(cudaMallocFromPoolAsync(&ptr_, bytes, CublasLtContext::current().pool(), stream));
}

DeviceScratch::~DeviceScratch() {
  if (ptr_) cudaFreeAsync(ptr_, stream_);  // no throw from a destructor
}

DeviceScratch::DeviceScratch(DeviceScratch&& other) noexcept
    : ptr_(std::exchange(other.ptr_, nullptr)), stream_(other.stream_) {}

DeviceScratch& DeviceScratch::operator=(DeviceScratch&& other) noexcept {
  if (this != &other) {
    if (ptr_) cudaFreeAsync(ptr_, stream_);
    ptr_ = std::exchange(other.ptr_, nullptr);
    stream_ = other.stream_;
  }
  return *this;
}

DeviceGuard::DeviceGuard(int device) {
  CHECK_CUDA(cudaGetDevice(&previous_));
  if (previous_ != device) {
    CHECK_CUDA(cudaSetDevice(device));
    changed_ = true;
  }
}

DeviceGuard::~DeviceGuard() {
  if (changed_) cudaSetDevice(previous_);
}

}  // namespace crucible::cuda
