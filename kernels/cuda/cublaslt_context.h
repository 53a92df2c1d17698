// kernels/cuda/cublaslt_context.h: per-device cuBLASLt state and stream-ordered scratch.
//
// CublasLtContext holds, per CUDA device, what every GEMM call would otherwise re-create:
// the cuBLASLt handle, a cuBLASLt workspace per stream (a workspace must not be shared by
// GEMMs that may run concurrently), the device's compute capability, and a memory pool
// for the GEMMs' temporaries (quantized operands, BF16 copies, transposes). Contexts are
// created on first use and live until the process ends.
// NOTE: never destroyed on purpose: a static destructor would run after the CUDA runtime
// has been torn down at exit.
//
// DeviceScratch is a temporary device buffer in stream order (cudaMallocFromPoolAsync /
// cudaFreeAsync on the context's pool): allocation and release cost no synchronization,
// and memory freed on one stream is reused safely by later work.
#pragma once

#include <cublasLt.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <mutex>
#include <unordered_map>

namespace crucible::cuda {

class CublasLtContext {
 public:
  // NOTE: 32 MiB is NVIDIA's recommended cuBLASLt workspace on Hopper.
  static constexpr std::size_t kWorkspaceBytes = std::size_t(32) << 20;

  // The context of the current CUDA device.
  static CublasLtContext& current();

  int device() const { return device_; }
  int cc_major() const { return cc_major_; }
  int cc_minor() const { return cc_minor_; }
  cublasLtHandle_t handle() const { return handle_; }
  cudaMemPool_t pool() const { return pool_; }
  // The workspace of `stream` (kWorkspaceBytes, 256-byte aligned), made on first use.
  void* workspace(cudaStream_t stream);

  CublasLtContext(const CublasLtContext&) = delete;
  CublasLtContext& operator=(const CublasLtContext&) = delete;

 private:
  explicit CublasLtContext(int device);

  int device_ = 0;
  int cc_major_ = 0, cc_minor_ = 0;
  cublasLtHandle_t handle_ = nullptr;
  cudaMemPool_t pool_ = nullptr;
  std::mutex mutex_;
  std::unordered_map<cudaStream_t, void*> workspaces_;
};

// A stream-ordered temporary on the current device; released (in stream order) when
// destroyed. Move-only.
class DeviceScratch {
 public:
  DeviceScratch() = default;
  DeviceScratch(std::size_t bytes, cudaStream_t stream);
  ~DeviceScratch();
  DeviceScratch(DeviceScratch&& other) noexcept;
  DeviceScratch& operator=(DeviceScratch&& other) noexcept;
  DeviceScratch(const DeviceScratch&) = delete;
  DeviceScratch& operator=(const DeviceScratch&) = delete;

  void* get() const { return ptr_; }
  template <typename T>
  T* as() const {
    return static_cast<T*>(ptr_);
  }

 private:
  void* ptr_ = nullptr;
  cudaStream_t stream_ = nullptr;
};

// Makes `device` current for a scope and restores the previous device.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device);
  ~DeviceGuard();
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = 0;
  bool changed_ = false;
};

}  // namespace crucible::cuda
