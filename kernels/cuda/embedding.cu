// kernels/cuda/embedding.cu: token embedding gather (forward) and scatter-add
// (backward) on the GPU (FP32), and the general sorted row scatter-add both the
// embedding backward and ops::scatter_add_rows use.
//
// The CUDA twin of embedding_forward/backward in kernels/cpu/elementwise.cpp and of
// scatter_add_rows in kernels/cpu/tensor_ops.cpp; all agree with it bit for bit
// (scatter_add_rows rounds scale * row, then adds, as the CPU; the embedding's scale is
// 1, whose product is exact). The forward is a row copy. The backward must add the
// gradient rows of every token sharing an id, deterministically (DESIGN.md
// principle 14: no float atomics, whose order varies from run to run):
//   1. pair each token position t with its id and sort the pairs by id with CUB's
//      radix sort, which is stable: tokens of one id stay in ascending t;
//   2. one block per (sorted position j, chunk of columns): a block whose j starts a
//      run of equal ids (j = 0 or id[j - 1] != id[j]) owns that table row's columns,
//      loads them once, adds the run's gradient rows in ascending t and stores them;
//      other blocks exit at once.
// Every table element is then read and written by exactly one thread, and its sum is
// dtable + g_t1 + g_t2 + ... in ascending t: the CPU's order, so the bits are the
// CPU's too.
//
// Ids outside [0, V) are found inside the kernels, which then print the id and its
// position and trap (the CPU twin throws); checking them on the host would cost a
// device-to-host copy and a synchronization per call.
//
// NOTE: memory bound; 16-byte accesses when D % 4 == 0 and the pointers are aligned.
// A run's rows are added serially by one block per column chunk, so an id repeated
// thousands of times (a padding token) takes proportionally longer than the rest;
// the column chunks (D / 1024 of them for D = 7168) spread it over a few SMs. The
// sort's scratch (three [T] int arrays and CUB's temp storage) is stream-ordered
// (cudaMallocAsync).
#include <cub/device/device_radix_sort.cuh>

#include "core/cuda_check.h"
#include "kernels/cuda/device_utils.cuh"
#include "kernels/cuda/elementwise_cuda.h"
#include "kernels/cuda/tensor_ops_cuda.h"

namespace crucible::cuda {

namespace {

using detail::aligned;
using detail::ceil_div;
using detail::load_vec;
using detail::store_vec;
using detail::Vec;

constexpr int kThreads = 256;

// One block per token t: out[t, :] = table[ids[t], :].
template <int kVec>
__global__ void __launch_bounds__(kThreads)
    embedding_forward_kernel(const std::int32_t* __restrict__ ids, const float* __restrict__ table,
                             float* __restrict__ out, std::int64_t V, std::int64_t D) {
  const std::int64_t t = blockIdx.x;
  const std::int32_t id = ids[t];
  if (id < 0 || id >= V) {
    if (threadIdx.x == 0)
      CRUCIBLE_DEVICE_FAIL(
          "embedding_forward: token id %d at position %lld is outside the vocabulary [0, %lld)\n", id,
          static_cast<long long>(t), static_cast<long long>(V));
    return;
  }
  const float* src = table + static_cast<std::int64_t>(id) * D;
  float* dst = out + t * D;
  for (std::int64_t i = threadIdx.x * kVec; i < D; i += kThreads * kVec)
    store_vec<kVec>(dst + i, load_vec<kVec>(src + i));
}

__global__ void iota_kernel(std::int32_t* __restrict__ v, std::int64_t n) {
  const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) v[i] = static_cast<std::int32_t>(i);
}

// Block (j, chunk): if sorted position j starts a run of equal ids, adds the run's
// gradient rows (ascending token order), each times scale[token] (scale nullptr = 1),
// into the columns [chunk * kThreads * kVec, + kThreads * kVec) of that id's table row.
// `embedding` only picks the error message.
template <int kVec>
__global__ void __launch_bounds__(kThreads)
    embedding_backward_kernel(const float* __restrict__ dout, const std::int32_t* __restrict__ sorted_ids,
                              const std::int32_t* __restrict__ sorted_tokens, const float* __restrict__ scale,
                              float* __restrict__ dtable, std::int64_t T, std::int64_t V, std::int64_t D,
                              bool embedding) {
  const std::int64_t j = blockIdx.x;
  const std::int32_t id = sorted_ids[j];
  if (j > 0 && sorted_ids[j - 1] == id) return;  // not the first token of its id
  if (id < 0 || id >= V) {
    if (threadIdx.x == 0 && blockIdx.y == 0) {
      if (embedding)
        CRUCIBLE_DEVICE_FAIL(
            "embedding_backward: token id %d at position %d is outside the vocabulary [0, %lld)\n", id,
            sorted_tokens[j], static_cast<long long>(V));
      else
        CRUCIBLE_DEVICE_FAIL("scatter_add_rows: index[%d] = %d is outside the destination rows [0, %lld)\n",
                             sorted_tokens[j], id, static_cast<long long>(V));
    }
    return;
  }
  const std::int64_t c = (static_cast<std::int64_t>(blockIdx.y) * kThreads + threadIdx.x) * kVec;
  if (c >= D) return;
  float* row = dtable + static_cast<std::int64_t>(id) * D + c;
  Vec<kVec> acc = load_vec<kVec>(row);
  for (std::int64_t k = j; k < T && sorted_ids[k] == id; ++k) {
    const Vec<kVec> g = load_vec<kVec>(dout + static_cast<std::int64_t>(sorted_tokens[k]) * D + c);
    const float a = scale ? scale[sorted_tokens[k]] : 1.0f;
#pragma unroll
    for (int v = 0; v < kVec; ++v) acc.v[v] = __fadd_rn(acc.v[v], __fmul_rn(a, g.v[v]));
  }
  store_vec<kVec>(row, acc);
}

std::size_t round_up(std::size_t bytes) { return (bytes + 255) / 256 * 256; }

}  // namespace

void embedding_forward(const std::int32_t* ids, const float* table, float* out, std::int64_t T,
                       std::int64_t V, std::int64_t D, void* stream) {
  if (T == 0 || D == 0) return;
  auto st = static_cast<cudaStream_t>(stream);
  const auto grid = static_cast<unsigned>(T);
  if (D % 4 == 0 && aligned(table, 16) && aligned(out, 16))
    embedding_forward_kernel<4><<<grid, kThreads, 0, st>>>(ids, table, out, V, D);
  else
    embedding_forward_kernel<1><<<grid, kThreads, 0, st>>>(ids, table, out, V, D);
  CHECK_CUDA_LAUNCH();
}

namespace {

// dtable [V, D] += scale[t] dout[t] at row ids[t] for t < T, each row's terms in ascending t.
void sorted_scatter_add(const float* dout, const std::int32_t* ids, const float* scale, float* dtable,
                        std::int64_t T, std::int64_t V, std::int64_t D, bool embedding, void* stream) {
  if (T == 0 || D == 0) return;
  CRUCIBLE_CHECK(T <= INT32_MAX, embedding ? "embedding_backward: " : "scatter_add_rows: ", T,
                 " rows exceed the sort's 32-bit count");
  auto st = static_cast<cudaStream_t>(stream);
  const int n = static_cast<int>(T);

  // Scratch: sorted ids, token positions before and after the sort, CUB's storage.
  std::size_t cub_bytes = 0;
  CHECK_CUDA(cub::DeviceRadixSort::SortPairs(nullptr, cub_bytes, ids, static_cast<std::int32_t*>(nullptr),
                                             static_cast<const std::int32_t*>(nullptr),
                                             static_cast<std::int32_t*>(nullptr), n, 0, 32, st));
  const std::size_t ints = round_up(static_cast<std::size_t>(T) * sizeof(std::int32_t));
  char* scratch = nullptr;
  CHECK_CUDA(cudaMallocAsync(reinterpret_cast<void**>(&scratch), 3 * ints + cub_bytes, st));
  auto* sorted_ids = reinterpret_cast<std::int32_t*>(scratch);                // [T]
  auto* tokens = reinterpret_cast<std::int32_t*>(scratch + ints);             // [T] 0, 1, ..., T - 1
  auto* sorted_tokens = reinterpret_cast<std::int32_t*>(scratch + 2 * ints);  // [T]
  void* cub_storage = scratch + 3 * ints;

  iota_kernel<<<static_cast<unsigned>(ceil_div(T, kThreads)), kThreads, 0, st>>>(tokens, T);
  CHECK_CUDA_LAUNCH();
  CHECK_CUDA(cub::DeviceRadixSort::SortPairs(cub_storage, cub_bytes, ids, sorted_ids, tokens, sorted_tokens,
                                             n, 0, 32, st));
  const bool vec4 = D % 4 == 0 && aligned(dout, 16) && aligned(dtable, 16);
  const int per_block = kThreads * (vec4 ? 4 : 1);
  const dim3 grid(static_cast<unsigned>(T), static_cast<unsigned>(ceil_div(D, per_block)));
  if (vec4)
    embedding_backward_kernel<4><<<grid, kThreads, 0, st>>>(dout, sorted_ids, sorted_tokens, scale, dtable, T, V,
                                                            D, embedding);
  else
    embedding_backward_kernel<1><<<grid, kThreads, 0, st>>>(dout, sorted_ids, sorted_tokens, scale, dtable, T, V,
                                                            D, embedding);
  CHECK_CUDA_LAUNCH();
  CHECK_CUDA(cudaFreeAsync(scratch, st));
}

}  // namespace

void embedding_backward(const float* dout, const std::int32_t* ids, float* dtable, std::int64_t T,
                        std::int64_t V, std::int64_t D, void* stream) {
  sorted_scatter_add(dout, ids, nullptr, dtable, T, V, D, true, stream);
}

void scatter_add_rows(const float* src, const std::int32_t* index, const float* scale, float* dst, std::int64_t n,
                      std::int64_t dst_rows, std::int64_t w, void* stream) {
  sorted_scatter_add(src, index, scale, dst, n, dst_rows, w, false, stream);
}

}  // namespace crucible::cuda
