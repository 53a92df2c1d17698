// dist/communicator.cpp: the shared argument checks of every collective, the host
// helpers, SelfCommunicator, and the rank-ordered reference fold.
//
// Invariant: a collective that passes the checks here is well formed on this rank
// (dtypes, devices, sizes, counts, overlaps), so a backend only moves bytes; the
// rank-ordered fold is the one definition of a deterministic reduction's bits.
// Reference: DESIGN.md §6; the fold order is the one NCCL documents as "not
// guaranteed" for its own algorithms, which is why deterministic mode does not use them.
#include "dist/communicator.h"

#include <algorithm>
#include <cmath>
#include <type_traits>

#include "core/numerics.h"
#include "dist/mpi_communicator.h"
#include "dist/mpi_env.h"

#ifdef CRUCIBLE_WITH_CUDA
#include "dist/cuda/nccl_communicator.h"
#endif

namespace crucible::dist {

std::string_view reduce_op_name(ReduceOp op) {
  switch (op) {
    case ReduceOp::Sum: return "sum";
    case ReduceOp::Max: return "max";
    case ReduceOp::Min: return "min";
    case ReduceOp::Avg: return "avg";
  }
  return "?";
}

std::string_view reduction_mode_name(ReductionMode mode) {
  switch (mode) {
    case ReductionMode::Deterministic: return "deterministic";
    case ReductionMode::Native: return "native";
  }
  return "?";
}

bool reduce_supported(DType dtype, ReduceOp op) {
  switch (dtype) {
    case DType::F64:
    case DType::F32:
    case DType::BF16:
    case DType::F16: return true;
    case DType::I64:
    case DType::I32: return op != ReduceOp::Avg;
    case DType::U8: return op == ReduceOp::Max || op == ReduceOp::Min;
    case DType::E4M3:
    case DType::E5M2: return false;  // FP8 reduces after dequantization
  }
  return false;
}

void CommunicatorConfig::validate() const {
  // NOTE: 8-byte elements times chunk_elems must fit MPI's int byte counts.
  constexpr std::int64_t kMaxChunk = (std::int64_t{1} << 31) / 8 - 1;
  CRUCIBLE_USER_CHECK(chunk_elems >= 1 && chunk_elems <= kMaxChunk,
                      "communicator chunk_elems must be in [1, ", kMaxChunk, "]; got ",
                      chunk_elems);
}

Communicator::Communicator(CommunicatorConfig config) : config_(config) {
  config_.validate();
}

namespace {

// True when a and b share bytes.
bool overlaps(const Tensor& a, const Tensor& b) {
  if (a.storage() != b.storage() || a.nbytes() == 0 || b.nbytes() == 0) return false;
  return a.byte_offset() < b.byte_offset() + b.nbytes() &&
         b.byte_offset() < a.byte_offset() + a.nbytes();
}

// True when `part` is exactly block `index` (of part's size) of `whole`.
bool is_block_of(const Tensor& part, const Tensor& whole, int index) {
  return part.storage() == whole.storage() &&
         part.byte_offset() ==
             whole.byte_offset() + static_cast<std::size_t>(index) * part.nbytes();
}

std::int64_t row_elems(const Tensor& t) {
  return t.dim(0) == 0 ? 0 : t.numel() / t.dim(0);
}

void check_counts(std::span<const std::int64_t> counts, int world, std::int64_t rows,
                  const char* which, const Tensor& t) {
  CRUCIBLE_CHECK(static_cast<int>(counts.size()) == world, "all_to_all_v: ", which, " has ",
                 counts.size(), " entries for a world of ", world);
  std::int64_t sum = 0;
  for (std::int64_t c : counts) {
    CRUCIBLE_CHECK(c >= 0, "all_to_all_v: negative ", which, " entry ", c);
    sum += c;
  }
  CRUCIBLE_CHECK(sum <= rows, "all_to_all_v: ", which, " add up to ", sum, " rows but tensor ",
                 t.name(), " ", t.shape().str(), " has ", rows);
}

}  // namespace

void Communicator::check_tensor(const Tensor& t, const char* op, const char* what,
                                const Stream& stream) const {
  CRUCIBLE_CHECK(t.defined(), op, ": ", what, " tensor is undefined");
  CRUCIBLE_CHECK(supports_device(t.device()), op, ": the ", backend(), " communicator cannot move ",
                 t.device().str(), " tensors (", what, " '", t.name(), "')");
  CRUCIBLE_CHECK(stream.device() == t.device(), op, ": ", what, " '", t.name(), "' is on ",
                 t.device().str(), " but the stream is on ", stream.device().str());
}

void Communicator::all_reduce(Tensor& t, ReduceOp op, const Stream& stream) {
  check_tensor(t, "all_reduce", "the", stream);
  CRUCIBLE_CHECK(reduce_supported(t.dtype(), op), "all_reduce: ", reduce_op_name(op),
                 " is not defined for ", dtype_name(t.dtype()), " tensor '", t.name(), "'");
  if (t.numel() == 0) return;
  do_all_reduce(t, op, stream);
}

void Communicator::reduce_scatter(const Tensor& in, Tensor& out, ReduceOp op,
                                  const Stream& stream) {
  check_tensor(in, "reduce_scatter", "input", stream);
  check_tensor(out, "reduce_scatter", "output", stream);
  CRUCIBLE_CHECK(in.dtype() == out.dtype() && in.device() == out.device(),
                 "reduce_scatter: input '", in.name(), "' is ", dtype_name(in.dtype()), " on ",
                 in.device().str(), ", output '", out.name(), "' is ", dtype_name(out.dtype()),
                 " on ", out.device().str());
  CRUCIBLE_CHECK(in.numel() == out.numel() * world(), "reduce_scatter: input '", in.name(), "' ",
                 in.shape().str(), " must hold world (", world(), ") x output '", out.name(), "' ",
                 out.shape().str(), " elements (pad the flat buffer: dist/shard.h)");
  CRUCIBLE_CHECK(reduce_supported(in.dtype(), op), "reduce_scatter: ", reduce_op_name(op),
                 " is not defined for ", dtype_name(in.dtype()));
  CRUCIBLE_CHECK(!overlaps(in, out) || is_block_of(out, in, rank()), "reduce_scatter: output '",
                 out.name(),
                 "' overlaps the input other than as "
                 "its block ",
                 rank());
  if (out.numel() == 0) return;
  do_reduce_scatter(in, out, op, stream);
}

void Communicator::all_gather(const Tensor& in, Tensor& out, const Stream& stream) {
  check_tensor(in, "all_gather", "input", stream);
  check_tensor(out, "all_gather", "output", stream);
  CRUCIBLE_CHECK(in.dtype() == out.dtype() && in.device() == out.device(), "all_gather: input '",
                 in.name(), "' is ", dtype_name(in.dtype()), " on ", in.device().str(),
                 ", output '", out.name(), "' is ", dtype_name(out.dtype()), " on ",
                 out.device().str());
  CRUCIBLE_CHECK(out.numel() == in.numel() * world(), "all_gather: output '", out.name(), "' ",
                 out.shape().str(), " must hold world (", world(), ") x input '", in.name(), "' ",
                 in.shape().str(), " elements");
  CRUCIBLE_CHECK(!overlaps(in, out) || is_block_of(in, out, rank()), "all_gather: input '",
                 in.name(), "' overlaps the output other than as its block ", rank());
  if (in.numel() == 0) return;
  do_all_gather(in, out, stream);
}

void Communicator::broadcast(Tensor& t, int root, const Stream& stream) {
  check_tensor(t, "broadcast", "the", stream);
  CRUCIBLE_CHECK(root >= 0 && root < world(), "broadcast: root ", root,
                 " is not a rank of a world of ", world());
  if (t.numel() == 0) return;
  do_broadcast(t, root, stream);
}

void Communicator::all_to_all_v(const Tensor& in, std::span<const std::int64_t> send_counts,
                                Tensor& out, std::span<const std::int64_t> recv_counts,
                                const Stream& stream) {
  check_tensor(in, "all_to_all_v", "input", stream);
  check_tensor(out, "all_to_all_v", "output", stream);
  CRUCIBLE_CHECK(in.rank() >= 1 && out.rank() >= 1, "all_to_all_v: tensors need a row dim; got ",
                 in.shape().str(), " and ", out.shape().str());
  CRUCIBLE_CHECK(in.dtype() == out.dtype() && in.device() == out.device(), "all_to_all_v: input '",
                 in.name(), "' is ", dtype_name(in.dtype()), " on ", in.device().str(),
                 ", output '", out.name(), "' is ", dtype_name(out.dtype()), " on ",
                 out.device().str());
  // Rows of an empty tensor have no size; any row size matches them.
  CRUCIBLE_CHECK(in.dim(0) == 0 || out.dim(0) == 0 || row_elems(in) == row_elems(out),
                 "all_to_all_v: rows of input '", in.name(), "' ", in.shape().str(),
                 " and output '", out.name(), "' ", out.shape().str(), " differ in size");
  check_counts(send_counts, world(), in.dim(0), "send_counts", in);
  check_counts(recv_counts, world(), out.dim(0), "recv_counts", out);
  CRUCIBLE_CHECK(!overlaps(in, out), "all_to_all_v: input '", in.name(), "' and output '",
                 out.name(), "' overlap");
  do_all_to_all_v(in, send_counts, out, recv_counts, stream);
}

void Communicator::barrier() {
  do_barrier();
}

void Communicator::all_reduce_f64(std::span<double> values, ReduceOp op) {
  if (values.empty()) return;
  const Device dev = staging_device();
  Tensor t(Shape{static_cast<std::int64_t>(values.size())}, DType::F64, dev, "all_reduce_f64");
  copy_bytes(t.raw(), dev, values.data(), Device::cpu(), t.nbytes());
  Stream stream = Stream::create(dev);
  all_reduce(t, op, stream);
  stream.synchronize();
  copy_bytes(values.data(), Device::cpu(), t.raw(), dev, t.nbytes());
}

double Communicator::all_reduce_f64(double value, ReduceOp op) {
  all_reduce_f64(std::span<double>(&value, 1), op);
  return value;
}

void Communicator::all_reduce_i64(std::span<std::int64_t> values, ReduceOp op) {
  if (values.empty()) return;
  const Device dev = staging_device();
  Tensor t(Shape{static_cast<std::int64_t>(values.size())}, DType::I64, dev, "all_reduce_i64");
  copy_bytes(t.raw(), dev, values.data(), Device::cpu(), t.nbytes());
  Stream stream = Stream::create(dev);
  all_reduce(t, op, stream);
  stream.synchronize();
  copy_bytes(values.data(), Device::cpu(), t.raw(), dev, t.nbytes());
}

std::int64_t Communicator::all_reduce_i64(std::int64_t value, ReduceOp op) {
  all_reduce_i64(std::span<std::int64_t>(&value, 1), op);
  return value;
}

std::vector<std::int64_t> Communicator::all_to_all_counts(
    std::span<const std::int64_t> send_counts) {
  const int w = world();
  CRUCIBLE_CHECK(static_cast<int>(send_counts.size()) == w,
                 "all_to_all_counts: ", send_counts.size(), " counts for a world of ", w);
  const Device dev = staging_device();
  Tensor send(Shape{w}, DType::I64, dev, "send_counts");
  Tensor recv(Shape{w}, DType::I64, dev, "recv_counts");
  copy_bytes(send.raw(), dev, send_counts.data(), Device::cpu(), send.nbytes());
  const std::vector<std::int64_t> ones(static_cast<std::size_t>(w), 1);
  Stream stream = Stream::create(dev);
  all_to_all_v(send, ones, recv, ones, stream);
  stream.synchronize();
  std::vector<std::int64_t> out(static_cast<std::size_t>(w));
  copy_bytes(out.data(), Device::cpu(), recv.raw(), dev, recv.nbytes());
  return out;
}

// ---- SelfCommunicator: one rank; the fold of one value is the value itself.

void SelfCommunicator::do_all_reduce(Tensor&, ReduceOp, const Stream&) {}

void SelfCommunicator::do_reduce_scatter(const Tensor& in, Tensor& out, ReduceOp, const Stream&) {
  if (!is_block_of(out, in, 0)) out.copy_from(in);
}

void SelfCommunicator::do_all_gather(const Tensor& in, Tensor& out, const Stream&) {
  if (!is_block_of(in, out, 0)) out.copy_from(in);
}

void SelfCommunicator::do_broadcast(Tensor&, int, const Stream&) {}

void SelfCommunicator::do_all_to_all_v(const Tensor& in, std::span<const std::int64_t> send_counts,
                                       Tensor& out, std::span<const std::int64_t> recv_counts,
                                       const Stream&) {
  CRUCIBLE_CHECK(send_counts[0] == recv_counts[0], "all_to_all_v: rank 0 sends ", send_counts[0],
                 " rows to itself but expects ", recv_counts[0]);
  if (send_counts[0] == 0) return;
  Tensor dst = out.slice(0, recv_counts[0]);
  dst.copy_from(in.slice(0, send_counts[0]));
}

std::unique_ptr<Communicator> make_communicator(const MpiEnv& env, Device device,
                                                CommunicatorConfig config) {
  if (!env.active() || env.world() == 1) return std::make_unique<SelfCommunicator>(config);
  if (device.is_cpu()) return std::make_unique<MpiCommunicator>(env, config);
#ifdef CRUCIBLE_WITH_CUDA
  return std::make_unique<NcclCommunicator>(env, device, config);
#else
  CRUCIBLE_FAIL("a run on ", device.str(), " with ", env.world(),
                " ranks needs the NCCL communicator, which only CUDA builds have: rebuild with "
                "-DCRUCIBLE_CUDA=ON (NCCL beside the CUDA toolkit), or use run.device = \"cpu\"");
#endif
}

// ---- The rank-ordered fold.

namespace {

template <typename T>
struct PlainCodec {
  using Elem = T;
  using Acc = T;
  static Acc load(T x) { return x; }
  static T store(Acc a) { return a; }
};
struct Bf16Codec {
  using Elem = std::uint16_t;
  using Acc = float;
  static float load(std::uint16_t x) { return bf16_to_f32(x); }
  static std::uint16_t store(float a) { return f32_to_bf16(a); }
};
struct F16Codec {
  using Elem = std::uint16_t;
  using Acc = float;
  static float load(std::uint16_t x) { return f16_to_f32(x); }
  static std::uint16_t store(float a) { return f32_to_f16(a); }
};

template <typename Codec, typename Combine>
void fold_with(const void* const* parts, int n_parts, std::int64_t count, void* dst,
               Combine combine, bool average) {
  using Elem = typename Codec::Elem;
  using Acc = typename Codec::Acc;
  std::vector<const Elem*> p(static_cast<std::size_t>(n_parts));
  for (int k = 0; k < n_parts; ++k) p[k] = static_cast<const Elem*>(parts[k]);
  Elem* out = static_cast<Elem*>(dst);
  const Acc n = static_cast<Acc>(n_parts);
  for (std::int64_t i = 0; i < count; ++i) {
    Acc acc = Codec::load(p[0][i]);
    for (int k = 1; k < n_parts; ++k) acc = combine(acc, Codec::load(p[k][i]));
    if (average) acc = acc / n;
    out[i] = Codec::store(acc);  // all parts' index i were read above: dst may alias
  }
}

template <typename Codec>
void fold_op(ReduceOp op, const void* const* parts, int n_parts, std::int64_t count, void* dst) {
  using Acc = typename Codec::Acc;
  if constexpr (std::is_integral_v<Acc>) {
    using U = std::make_unsigned_t<Acc>;
    switch (op) {
      case ReduceOp::Sum:  // two's complement wrap, without signed-overflow UB
        return fold_with<Codec>(
            parts, n_parts, count, dst,
            [](Acc a, Acc b) { return static_cast<Acc>(static_cast<U>(a) + static_cast<U>(b)); },
            false);
      case ReduceOp::Max:
        return fold_with<Codec>(
            parts, n_parts, count, dst, [](Acc a, Acc b) { return b > a ? b : a; }, false);
      case ReduceOp::Min:
        return fold_with<Codec>(
            parts, n_parts, count, dst, [](Acc a, Acc b) { return b < a ? b : a; }, false);
      case ReduceOp::Avg: break;
    }
  } else {
    switch (op) {
      case ReduceOp::Sum:
      case ReduceOp::Avg:
        return fold_with<Codec>(
            parts, n_parts, count, dst, [](Acc a, Acc b) { return a + b; }, op == ReduceOp::Avg);
      case ReduceOp::Max:  // NaN wins once seen
        return fold_with<Codec>(
            parts, n_parts, count, dst,
            [](Acc a, Acc b) { return (b > a || std::isnan(b)) ? b : a; }, false);
      case ReduceOp::Min:
        return fold_with<Codec>(
            parts, n_parts, count, dst,
            [](Acc a, Acc b) { return (b < a || std::isnan(b)) ? b : a; }, false);
    }
  }
  CRUCIBLE_FAIL("fold: unsupported reduction ", reduce_op_name(op));
}

}  // namespace

namespace detail {
void fold_in_rank_order(DType dtype, ReduceOp op, const void* const* parts, int n_parts,
                        std::int64_t count, void* dst) {
  CRUCIBLE_CHECK(n_parts >= 1, "fold of no contributions");
  CRUCIBLE_CHECK(reduce_supported(dtype, op), reduce_op_name(op), " is not defined for ",
                 dtype_name(dtype));
  switch (dtype) {
    case DType::F64: return fold_op<PlainCodec<double>>(op, parts, n_parts, count, dst);
    case DType::F32: return fold_op<PlainCodec<float>>(op, parts, n_parts, count, dst);
    case DType::BF16: return fold_op<Bf16Codec>(op, parts, n_parts, count, dst);
    case DType::F16: return fold_op<F16Codec>(op, parts, n_parts, count, dst);
    case DType::I64: return fold_op<PlainCodec<std::int64_t>>(op, parts, n_parts, count, dst);
    case DType::I32: return fold_op<PlainCodec<std::int32_t>>(op, parts, n_parts, count, dst);
    case DType::U8: return fold_op<PlainCodec<std::uint8_t>>(op, parts, n_parts, count, dst);
    default: break;
  }
  CRUCIBLE_FAIL("fold: unsupported dtype ", dtype_name(dtype));
}
}  // namespace detail

void reduce_in_rank_order(std::span<const Tensor> contributions, ReduceOp op, Tensor& out) {
  CRUCIBLE_CHECK(!contributions.empty(), "reduce_in_rank_order: no contributions");
  CRUCIBLE_CHECK(out.device().is_cpu(), "reduce_in_rank_order is the CPU reference; '", out.name(),
                 "' is on ", out.device().str());
  std::vector<const void*> parts;
  for (const Tensor& c : contributions) {
    CRUCIBLE_CHECK(c.device().is_cpu() && c.dtype() == out.dtype() && c.numel() == out.numel(),
                   "reduce_in_rank_order: contribution '", c.name(), "' ", c.shape().str(), " ",
                   dtype_name(c.dtype()), " on ", c.device().str(), " does not match '", out.name(),
                   "' ", out.shape().str(), " ", dtype_name(out.dtype()));
    parts.push_back(c.raw());
  }
  detail::fold_in_rank_order(out.dtype(), op, parts.data(), static_cast<int>(parts.size()),
                             out.numel(), out.raw());
}

}  // namespace crucible::dist
