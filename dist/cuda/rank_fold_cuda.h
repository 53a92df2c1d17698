// dist/cuda/rank_fold_cuda.h: the rank-ordered fold of dist/communicator.h on the GPU
// (CUDA builds only): the CUDA twin of detail::fold_in_rank_order.
//
// Invariant: for finite and infinite inputs the bits equal the CPU fold's:
//   dst[i] = (((p_0[i] op p_1[i]) op p_2[i]) ... op p_{n-1}[i])   [/ divisor for Avg]
// in the accumulation type (F32 for BF16/F16, else the dtype), each step rounded to
// nearest even (the kernel spells __fadd_rn / __fdiv_rn, so no flag can turn them into
// something else), rounded once at the store with core/numerics.h's rule. NaN positions
// match too; a NaN's sign and payload may differ (x86 and CUDA make different NaNs).
// Reference: dist/communicator.cpp (fold_with), core/numerics.h.
#pragma once

#include <cstdint>

#include "core/dtype.h"
#include "dist/communicator.h"

namespace crucible::dist::cuda {

// parts: n_parts rows of `stride` elements on the GPU, row k = contribution k
//   ([n_parts, stride] of `dtype`; count <= stride elements of each row are read).
// dst:   [count] of `dtype`; may alias row 0 when n_parts == 1 (each index is read
//   before it is written), must not overlap another row.
// divisor: what Avg divides by (the world, which is n_parts for a fold of every rank's
//   values; a native NCCL sum divides with n_parts = 1). Ignored for other ops.
// stream: a cudaStream_t (nullptr = the legacy default stream). Enqueued, not waited on.
void fold_rows_in_rank_order(DType dtype, ReduceOp op, const void* parts, std::int64_t stride,
                             int n_parts, std::int64_t count, void* dst, int divisor,
                             void* stream);

}  // namespace crucible::dist::cuda
