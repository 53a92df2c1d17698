// core/cuda_check.h: CHECK_CUDA and CHECK_CUBLAS (CUDA builds only).
//
// Same family as CRUCIBLE_CHECK: the failed call, the library's own error name and
// string, file:line and rank, thrown as crucible::Error.
#pragma once

#ifdef CRUCIBLE_WITH_CUDA
#include <cublasLt.h>
#include <cuda_runtime.h>

#include "core/error.h"

#define CHECK_CUDA(call)                                                                  \
  do {                                                                                    \
    cudaError_t crucible_cuda_rc_ = (call);                                               \
    if (crucible_cuda_rc_ != cudaSuccess) [[unlikely]]                                    \
      ::crucible::fail(::crucible::detail::concat("CUDA call failed: " #call ": ",        \
                                                  cudaGetErrorName(crucible_cuda_rc_), ": ", \
                                                  cudaGetErrorString(crucible_cuda_rc_)),  \
                       __FILE__, __LINE__);                                               \
  } while (0)

// Checks the last kernel launch (configuration errors) without synchronizing.
#define CHECK_CUDA_LAUNCH() CHECK_CUDA(cudaGetLastError())

#define CHECK_CUBLAS(call)                                                                \
  do {                                                                                    \
    cublasStatus_t crucible_cublas_rc_ = (call);                                          \
    if (crucible_cublas_rc_ != CUBLAS_STATUS_SUCCESS) [[unlikely]]                        \
      ::crucible::fail(::crucible::detail::concat("cuBLAS call failed: " #call ": ",      \
                                                  cublasGetStatusName(crucible_cublas_rc_), ": ", \
                                                  cublasGetStatusString(crucible_cublas_rc_)), \
                       __FILE__, __LINE__);                                               \
  } while (0)
#endif
