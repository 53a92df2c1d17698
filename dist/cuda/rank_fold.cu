// dist/cuda/rank_fold.cu: the rank-ordered fold on the GPU (see rank_fold_cuda.h).
//
// One thread per element (grid-stride): load row 0, combine rows 1..n-1 in order,
// divide for Avg, store. Element i's result depends only on the column i of the rows,
// never on the launch shape, so the bits are the same for any grid.
// Reference: dist/communicator.cpp (the CPU fold this mirrors line by line).
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <type_traits>

#include "core/cuda_check.h"
#include "dist/cuda/rank_fold_cuda.h"

namespace crucible::dist::cuda {

namespace {

constexpr int kThreads = 256;
constexpr std::int64_t kMaxBlocks = 4096;  // grid-stride beyond

// IEEE round-to-nearest-even arithmetic, spelled out so that no compiler flag
// (--use_fast_math, -prec-div=false) changes the bits.
__device__ __forceinline__ float add_rn(float a, float b) { return __fadd_rn(a, b); }
__device__ __forceinline__ double add_rn(double a, double b) { return __dadd_rn(a, b); }
__device__ __forceinline__ float div_rn(float a, float b) { return __fdiv_rn(a, b); }
__device__ __forceinline__ double div_rn(double a, double b) { return __ddiv_rn(a, b); }

template <typename T>
struct PlainCodec {
  using Elem = T;
  using Acc = T;
  __device__ static Acc load(T x) { return x; }
  __device__ static T store(Acc a) { return a; }
};

// BF16 is the top half of a float32. Store: round to nearest even on the dropped 16
// bits (a carry out of the largest binade lands on inf, IEEE overflow); NaN becomes
// the canonical sign | 0x7FC0 of core/numerics.h.
struct Bf16Codec {
  using Elem = std::uint16_t;
  using Acc = float;
  __device__ static float load(std::uint16_t x) {
    return __uint_as_float(static_cast<unsigned>(x) << 16);
  }
  __device__ static std::uint16_t store(float a) {
    const unsigned bits = __float_as_uint(a);
    if (isnan(a)) return static_cast<std::uint16_t>(((bits >> 16) & 0x8000u) | 0x7FC0u);
    return static_cast<std::uint16_t>((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16);
  }
};

// FP16: cvt.rn.f16.f32 (nearest even, subnormals kept, overflow to inf) for numbers;
// NaN becomes sign | 0x7E00 as on the CPU (cvt would give 0x7FFF).
struct F16Codec {
  using Elem = std::uint16_t;
  using Acc = float;
  __device__ static float load(std::uint16_t x) { return __half2float(__ushort_as_half(x)); }
  __device__ static std::uint16_t store(float a) {
    if (isnan(a))
      return static_cast<std::uint16_t>(((__float_as_uint(a) >> 16) & 0x8000u) | 0x7E00u);
    return __half_as_ushort(__float2half_rn(a));
  }
};

template <typename Acc>
struct FloatSum {
  __device__ Acc operator()(Acc a, Acc b) const { return add_rn(a, b); }
};
template <typename Acc>
struct FloatMax {  // NaN wins once seen
  __device__ Acc operator()(Acc a, Acc b) const { return (b > a || isnan(b)) ? b : a; }
};
template <typename Acc>
struct FloatMin {
  __device__ Acc operator()(Acc a, Acc b) const { return (b < a || isnan(b)) ? b : a; }
};
template <typename Acc>
struct IntSum {  // two's complement wrap, as the CPU fold
  __device__ Acc operator()(Acc a, Acc b) const {
    using U = std::make_unsigned_t<Acc>;
    return static_cast<Acc>(static_cast<U>(a) + static_cast<U>(b));
  }
};
template <typename Acc>
struct IntMax {
  __device__ Acc operator()(Acc a, Acc b) const { return b > a ? b : a; }
};
template <typename Acc>
struct IntMin {
  __device__ Acc operator()(Acc a, Acc b) const { return b < a ? b : a; }
};

// parts and dst may alias (n_parts == 1): no __restrict__.
template <typename Codec, typename Combine, bool kAverage>
__global__ void fold_rows_kernel(const typename Codec::Elem* parts, std::int64_t stride,
                                 int n_parts, std::int64_t count, typename Codec::Elem* dst,
                                 typename Codec::Acc divisor) {
  using Acc = typename Codec::Acc;
  const Combine combine{};
  const std::int64_t step = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
       i < count; i += step) {
    Acc acc = Codec::load(parts[i]);
    for (int k = 1; k < n_parts; ++k) acc = combine(acc, Codec::load(parts[k * stride + i]));
    if constexpr (kAverage) acc = div_rn(acc, divisor);
    dst[i] = Codec::store(acc);
  }
}

struct Launch {
  const void* parts;
  std::int64_t stride;
  int n_parts;
  std::int64_t count;
  void* dst;
  int divisor;
  cudaStream_t stream;
};

template <typename Codec, typename Combine, bool kAverage = false>
void launch(const Launch& l) {
  using Elem = typename Codec::Elem;
  using Acc = typename Codec::Acc;
  const std::int64_t blocks = std::min(kMaxBlocks, (l.count + kThreads - 1) / kThreads);
  fold_rows_kernel<Codec, Combine, kAverage><<<static_cast<unsigned>(blocks), kThreads, 0, l.stream>>>(
      static_cast<const Elem*>(l.parts), l.stride, l.n_parts, l.count, static_cast<Elem*>(l.dst),
      static_cast<Acc>(l.divisor));
  CHECK_CUDA_LAUNCH();
}

template <typename Codec>
void launch_float(ReduceOp op, const Launch& l) {
  using Acc = typename Codec::Acc;
  switch (op) {
    case ReduceOp::Sum: return launch<Codec, FloatSum<Acc>>(l);
    case ReduceOp::Avg: return launch<Codec, FloatSum<Acc>, true>(l);
    case ReduceOp::Max: return launch<Codec, FloatMax<Acc>>(l);
    case ReduceOp::Min: return launch<Codec, FloatMin<Acc>>(l);
  }
}

// Integers: Sum, Max, Min; U8 only Max and Min (reduce_supported has checked).
template <typename T>
void launch_int(ReduceOp op, const Launch& l) {
  switch (op) {
    case ReduceOp::Sum: return launch<PlainCodec<T>, IntSum<T>>(l);
    case ReduceOp::Max: return launch<PlainCodec<T>, IntMax<T>>(l);
    case ReduceOp::Min: return launch<PlainCodec<T>, IntMin<T>>(l);
    case ReduceOp::Avg: break;
  }
  CRUCIBLE_FAIL("rank fold: avg of integers is not defined");
}

}  // namespace

void fold_rows_in_rank_order(DType dtype, ReduceOp op, const void* parts, std::int64_t stride,
                             int n_parts, std::int64_t count, void* dst, int divisor,
                             void* stream) {
  CRUCIBLE_CHECK(n_parts >= 1 && count <= stride && divisor >= 1, "rank fold: ", n_parts,
                 " rows of stride ", stride, ", count ", count, ", divisor ", divisor);
  CRUCIBLE_CHECK(reduce_supported(dtype, op), "rank fold: ", reduce_op_name(op),
                 " is not defined for ", dtype_name(dtype));
  if (count == 0) return;
  const Launch l{parts, stride, n_parts, count, dst, divisor, static_cast<cudaStream_t>(stream)};
  switch (dtype) {
    case DType::F64: return launch_float<PlainCodec<double>>(op, l);
    case DType::F32: return launch_float<PlainCodec<float>>(op, l);
    case DType::BF16: return launch_float<Bf16Codec>(op, l);
    case DType::F16: return launch_float<F16Codec>(op, l);
    case DType::I64: return launch_int<std::int64_t>(op, l);
    case DType::I32: return launch_int<std::int32_t>(op, l);
    case DType::U8: {
      if (op == ReduceOp::Max) return launch<PlainCodec<std::uint8_t>, IntMax<std::uint8_t>>(l);
      if (op == ReduceOp::Min) return launch<PlainCodec<std::uint8_t>, IntMin<std::uint8_t>>(l);
      break;
    }
    default: break;
  }
  CRUCIBLE_FAIL("rank fold: unsupported ", dtype_name(dtype), " ", reduce_op_name(op));
}

}  // namespace crucible::dist::cuda
