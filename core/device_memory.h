// core/device_memory.h: the only place core/ touches device memory APIs.
//
// CPU memory is 64-byte aligned and zeroed. CUDA memory is allocated, zeroed and
// freed in order on the device's legacy default stream (cudaMallocAsync from the
// default pool, which keeps freed memory for reuse), so a fresh Tensor reads as zeros
// on every device. Work on a non-blocking stream would not be ordered with that:
// crucible's streams are blocking (core/stream.h). In a build without CUDA, any CUDA
// request fails with a clear error.
// Init::Unspecified skips the zeroing on CUDA (the caller overwrites every byte; a
// step's hundreds of activations would otherwise each cost a memset); the CPU still
// zeroes, which is cheap there. With CRUCIBLE_POISON_EMPTY=1 in the environment,
// Unspecified memory is filled with 0xFF bytes (NaN floats, -1 integers) on every
// device, so that a read of memory nobody wrote shows in tests.
#pragma once

#include <cstddef>

#include "core/dtype.h"

namespace crucible {

enum class Init { Zero, Unspecified };

void* device_alloc(Device device, std::size_t bytes, Init init = Init::Zero);
void device_free(Device device, void* ptr);
void device_memset_zero(Device device, void* ptr, std::size_t bytes);
// Synchronous copy where at least one side is a CUDA device.
void device_copy(void* dst, Device dst_dev, const void* src, Device src_dev, std::size_t bytes);
// Number of visible CUDA devices (0 without CUDA or without a GPU).
int cuda_device_count();

}  // namespace crucible
