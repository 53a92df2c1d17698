// kernels/cuda/elementwise_cuda.h: host launchers of the RMSNorm, SwiGLU, embedding
// and RoPE kernels (rmsnorm.cu, swiglu.cu, embedding.cu, rope.cu).
//
// Contract identical to kernels/elementwise.h (the CPU reference is kernels/cpu/
// elementwise.cpp): FP32, row-major, contiguous; activation gradients written (=),
// parameter gradients accumulated (+=). Pointers are device pointers on the current
// device; shapes are validated by the ops:: layer; outputs never alias inputs (except
// rope_apply, which is in place). `stream` is a cudaStream_t (nullptr = default
// stream); launches are asynchronous. Every result is deterministic (run to run).
#pragma once

#include <cstdint>

namespace crucible::cuda {

// x, y [rows, D]; w [D]; rstd [rows] (saved for backward).
void rmsnorm_forward(const float* x, const float* w, float eps, float* y, float* rstd, std::int64_t rows,
                     std::int64_t D, void* stream);
// dy, x, dx [rows, D]; w, dw [D]; rstd [rows]. dx =, dw += (fixed-order sum over rows).
void rmsnorm_backward(const float* dy, const float* x, const float* w, const float* rstd, float* dx,
                      float* dw, std::int64_t rows, std::int64_t D, void* stream);

// gate, up, out [n] (any shape, flattened).
void swiglu_forward(const float* gate, const float* up, float* out, std::int64_t n, void* stream);
// dout, gate, up, dgate, dup [n]; dgate =, dup =.
void swiglu_backward(const float* dout, const float* gate, const float* up, float* dgate, float* dup,
                     std::int64_t n, void* stream);

// ids [T] i32 in [0, V) (an id outside traps the kernel); table [V, D]; out [T, D].
void embedding_forward(const std::int32_t* ids, const float* table, float* out, std::int64_t T,
                       std::int64_t V, std::int64_t D, void* stream);
// dout [T, D]; ids [T]; dtable [V, D] += (each row sums its tokens in ascending order).
void embedding_backward(const float* dout, const std::int32_t* ids, float* dtable, std::int64_t T,
                        std::int64_t V, std::int64_t D, void* stream);

// x [T, H, d] in place over dims [offset, offset + rot); pos [T] i32 in [0, max_pos) (a
// position outside traps the kernel); cos, sin [max_pos, rot / 2].
void rope_apply(float* x, const std::int32_t* pos, const float* cos, const float* sin, std::int64_t T,
                std::int64_t H, std::int64_t d, std::int64_t offset, std::int64_t rot, std::int64_t max_pos,
                bool interleaved, bool inverse, void* stream);

}  // namespace crucible::cuda
