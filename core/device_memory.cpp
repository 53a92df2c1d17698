// core/device_memory.cpp: CPU allocation and, in CUDA builds, stream-ordered CUDA
// allocation from each device's default memory pool, and cudaMemcpy.
#include "core/device_memory.h"

#include <cstdlib>
#include <cstring>
#include <new>

#include "core/error.h"

#ifdef CRUCIBLE_WITH_CUDA
#include <cuda_runtime.h>

#include <cstdint>
#include <mutex>
#include <set>
#define CRUCIBLE_CORE_CHECK_CUDA(call)                                                     \
  do {                                                                                      \
    cudaError_t e_ = (call);                                                                \
    if (e_ != cudaSuccess)                                                                  \
      CRUCIBLE_FAIL("CUDA call failed: " #call ": ", cudaGetErrorString(e_));               \
  } while (0)
#endif

namespace crucible {

namespace {
constexpr std::size_t kHostAlignment = 64;

// CRUCIBLE_POISON_EMPTY=1: Init::Unspecified memory filled with 0xFF (read once).
bool poison_empty() {
  static const bool on = [] {
    const char* v = std::getenv("CRUCIBLE_POISON_EMPTY");
    return v != nullptr && std::strcmp(v, "0") != 0 && *v != '\0';
  }();
  return on;
}

#ifdef CRUCIBLE_WITH_CUDA
// The device's default pool keeps what is freed (release threshold: unlimited), so
// the many short-lived activations of a step reuse pool memory: no cudaMalloc, and no
// device-wide synchronization as cudaFree would make.
void keep_pool_memory(int device) {
  static std::mutex mu;
  static std::set<int> done;
  const std::lock_guard<std::mutex> lock(mu);
  if (!done.insert(device).second) return;
  cudaMemPool_t pool = nullptr;
  CRUCIBLE_CORE_CHECK_CUDA(cudaDeviceGetDefaultMemPool(&pool, device));
  std::uint64_t threshold = UINT64_MAX;
  CRUCIBLE_CORE_CHECK_CUDA(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &threshold));
}
#else
[[noreturn]] void no_cuda() {
  CRUCIBLE_FAIL("a CUDA tensor was requested but this crucible was built without CUDA "
                "(configure with -DCRUCIBLE_CUDA=ON on a machine with nvcc)");
}
#endif
}  // namespace

void* device_alloc(Device device, std::size_t bytes, Init init) {
  const int fill = init == Init::Unspecified && poison_empty() ? 0xFF : 0;
  if (device.is_cpu()) {
    std::size_t rounded = (bytes + kHostAlignment - 1) / kHostAlignment * kHostAlignment;
    void* p = std::aligned_alloc(kHostAlignment, rounded == 0 ? kHostAlignment : rounded);
    if (!p) CRUCIBLE_FAIL("out of host memory allocating ", bytes, " bytes");
    std::memset(p, fill, rounded);
    return p;
  }
#ifdef CRUCIBLE_WITH_CUDA
  void* p = nullptr;
  CRUCIBLE_CORE_CHECK_CUDA(cudaSetDevice(device.index));
  if (bytes > 0) {
    // Ordered on the legacy default stream, which every op given Stream() and every
    // Stream::create stream (blocking) is ordered with.
    keep_pool_memory(device.index);
    CRUCIBLE_CORE_CHECK_CUDA(cudaMallocAsync(&p, bytes, cudaStreamLegacy));
    if (init == Init::Zero || fill != 0) CRUCIBLE_CORE_CHECK_CUDA(cudaMemsetAsync(p, fill, bytes, cudaStreamLegacy));
  }
  return p;
#else
  no_cuda();
#endif
}

void device_free(Device device, void* ptr) {
  if (device.is_cpu()) {
    std::free(ptr);
    return;
  }
#ifdef CRUCIBLE_WITH_CUDA
  if (ptr) cudaFreeAsync(ptr, cudaStreamLegacy);  // no throw from a destructor path
#endif
}

void device_memset_zero(Device device, void* ptr, std::size_t bytes) {
  if (device.is_cpu()) {
    std::memset(ptr, 0, bytes);
    return;
  }
#ifdef CRUCIBLE_WITH_CUDA
  CRUCIBLE_CORE_CHECK_CUDA(cudaMemset(ptr, 0, bytes));
#else
  no_cuda();
#endif
}

void device_copy(void* dst, Device dst_dev, const void* src, Device src_dev, std::size_t bytes) {
#ifdef CRUCIBLE_WITH_CUDA
  cudaMemcpyKind kind = dst_dev.is_cpu()   ? cudaMemcpyDeviceToHost
                        : src_dev.is_cpu() ? cudaMemcpyHostToDevice
                                           : cudaMemcpyDeviceToDevice;
  CRUCIBLE_CORE_CHECK_CUDA(cudaMemcpy(dst, src, bytes, kind));
#else
  (void)dst, (void)dst_dev, (void)src, (void)src_dev, (void)bytes;
  no_cuda();
#endif
}

int cuda_device_count() {
#ifdef CRUCIBLE_WITH_CUDA
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) return 0;
  return n;
#else
  return 0;
#endif
}

}  // namespace crucible
