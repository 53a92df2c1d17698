// dist/mpi_communicator.cpp: MPI collectives on CPU tensors, with the rank-ordered
// deterministic reductions built from point-to-point messages.
//
// Invariant: in deterministic mode every element of a reduction is folded by exactly
// one rank, in rank order, by detail::fold_in_rank_order, and the other ranks receive
// those bits; so all ranks hold identical bits equal to reduce_in_rank_order().
// Reference: MPI 3.1 §3.5 (message ordering: messages between a pair with one tag on
// one communicator arrive in posting order), §5.9 (reductions), §5.8 (Alltoallv).
#include "dist/mpi_communicator.h"

#include <algorithm>
#include <climits>
#include <cstring>
#include <exception>

#include "core/numerics.h"
#include "dist/mpi_env.h"

namespace crucible::dist {

namespace {

constexpr int kTagReduce = 7101;  // contributions travelling to a block's owner
constexpr int kTagGather = 7102;  // folded blocks travelling back from their owner
constexpr std::int64_t kNativeChunk = std::int64_t{1} << 30;  // elements per native MPI call

MPI_Datatype reduce_type(DType t) {
  switch (t) {
    case DType::F64: return MPI_DOUBLE;
    case DType::F32: return MPI_FLOAT;
    case DType::I64: return MPI_INT64_T;
    case DType::I32: return MPI_INT32_T;
    case DType::U8: return MPI_UINT8_T;
    default: break;
  }
  CRUCIBLE_FAIL("no MPI reduction type for ", dtype_name(t));
}

// Bytes move as unsigned integers of the element's width (exact for every dtype).
MPI_Datatype move_type(DType t) {
  switch (dtype_size(t)) {
    case 1: return MPI_UINT8_T;
    case 2: return MPI_UINT16_T;
    case 4: return MPI_UINT32_T;
    case 8: return MPI_UINT64_T;
  }
  CRUCIBLE_FAIL("no MPI move type for ", dtype_name(t));
}

MPI_Op mpi_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::Sum:
    case ReduceOp::Avg: return MPI_SUM;
    case ReduceOp::Max: return MPI_MAX;
    case ReduceOp::Min: return MPI_MIN;
  }
  return MPI_SUM;
}

bool is_half(DType t) {
  return t == DType::BF16 || t == DType::F16;
}

int to_int(std::int64_t n, const char* what, const char* op) {
  CRUCIBLE_CHECK(n >= 0 && n <= INT_MAX, op, ": ", what, " ", n,
                 " exceeds MPI's int counts; split the call (or use deterministic mode)");
  return static_cast<int>(n);
}

// One point-to-point message of a collective.
struct Transfer {
  int peer;
  std::byte* data;
  std::size_t bytes;  // < 2^31 (chunk_elems * 8 bytes, see CommunicatorConfig::validate)
};

// Posts every receive, then every send, waits for all, and checks that each receive
// got exactly the bytes expected. A mismatch means the ranks called `op` with
// different sizes; it is reported as such instead of corrupting data.
void exchange(MPI_Comm comm, const std::vector<Transfer>& recvs, const std::vector<Transfer>& sends,
              int tag, const char* op) {
  std::vector<MPI_Request> reqs;
  reqs.reserve(recvs.size() + sends.size());
  for (const Transfer& r : recvs) {
    reqs.emplace_back();
    CHECK_MPI(
        MPI_Irecv(r.data, static_cast<int>(r.bytes), MPI_BYTE, r.peer, tag, comm, &reqs.back()));
  }
  for (const Transfer& s : sends) {
    reqs.emplace_back();
    CHECK_MPI(
        MPI_Isend(s.data, static_cast<int>(s.bytes), MPI_BYTE, s.peer, tag, comm, &reqs.back()));
  }
  std::vector<MPI_Status> st(reqs.size());
  const int rc = MPI_Waitall(static_cast<int>(reqs.size()), reqs.data(), st.data());
  if (rc == MPI_ERR_IN_STATUS) {
    for (std::size_t i = 0; i < st.size(); ++i) {
      if (st[i].MPI_ERROR == MPI_SUCCESS || st[i].MPI_ERROR == MPI_ERR_PENDING) continue;
      char text[MPI_MAX_ERROR_STRING] = "unknown error";
      int len = 0;
      MPI_Error_string(st[i].MPI_ERROR, text, &len);
      const bool is_recv = i < recvs.size();
      const Transfer& t = is_recv ? recvs[i] : sends[i - recvs.size()];
      CRUCIBLE_FAIL(op, ": message ", is_recv ? "from" : "to", " rank ", t.peer, " failed: ", text,
                    " (did the ranks call ", op, " with different sizes?)");
    }
  }
  CHECK_MPI(rc);
  for (std::size_t i = 0; i < recvs.size(); ++i) {
    int got = 0;
    CHECK_MPI(MPI_Get_count(&st[i], MPI_BYTE, &got));
    CRUCIBLE_CHECK(static_cast<std::size_t>(got) == recvs[i].bytes, op, ": rank ", recvs[i].peer,
                   " sent ", got, " bytes where ", recvs[i].bytes,
                   " were expected: the ranks called ", op, " with different sizes");
  }
}

// Block b of `len` elements split over `world` owners: sizes differ by at most one.
struct Block {
  std::int64_t begin, size;
};
Block block_of(std::int64_t len, int world, int b) {
  const std::int64_t q = len / world, r = len % world;
  return {b * q + std::min<std::int64_t>(b, r), q + (b < r ? 1 : 0)};
}

MPI_Comm world_comm_of(const MpiEnv& env) {
  CRUCIBLE_CHECK(env.active(),
                 "MpiCommunicator needs MPI (start the job with mpirun); a single "
                 "process uses SelfCommunicator (make_communicator picks it)");
  return MPI_COMM_WORLD;
}

}  // namespace

MpiCommunicator::MpiCommunicator(const MpiEnv& env, CommunicatorConfig config)
    : MpiCommunicator(world_comm_of(env), config) {}

MpiCommunicator::MpiCommunicator(MPI_Comm comm, CommunicatorConfig config) : Communicator(config) {
  CHECK_MPI(MPI_Comm_dup(comm, &comm_));
  CHECK_MPI(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN));
  CHECK_MPI(MPI_Comm_rank(comm_, &rank_));
  CHECK_MPI(MPI_Comm_size(comm_, &world_));
}

MpiCommunicator::~MpiCommunicator() {
  int finalized = 1;
  MPI_Finalized(&finalized);
  // While an exception unwinds, the job is on its way to MPI_Abort: skip the free,
  // which is formally collective and must not wait on ranks stuck in a collective.
  if (comm_ != MPI_COMM_NULL && !finalized && std::uncaught_exceptions() == 0)
    MPI_Comm_free(&comm_);
}

std::byte* MpiCommunicator::scratch(std::size_t bytes) {
  if (scratch_.size() < bytes) scratch_.resize(bytes);
  return scratch_.data();
}

void MpiCommunicator::do_all_reduce(Tensor& t, ReduceOp op, const Stream&) {
  if (world_ == 1) return;  // the fold of one value
  if (reduction() == ReductionMode::Deterministic)
    ordered_all_reduce(t, op);
  else
    native_all_reduce(t, op);
}

void MpiCommunicator::do_reduce_scatter(const Tensor& in, Tensor& out, ReduceOp op, const Stream&) {
  if (world_ == 1) {
    if (out.raw() != in.raw()) out.copy_from(in);
    return;
  }
  if (reduction() == ReductionMode::Deterministic)
    ordered_reduce_scatter(in, out, op);
  else
    native_reduce_scatter(in, out, op);
}

// Per piece of chunk elements: scatter its blocks to their owners, fold, gather back.
void MpiCommunicator::ordered_all_reduce(Tensor& t, ReduceOp op) {
  const std::size_t es = dtype_size(t.dtype());
  const std::int64_t chunk = config().chunk_elems;
  const std::int64_t slot = (chunk + world_ - 1) / world_;  // >= every block of a piece
  std::byte* base = static_cast<std::byte*>(t.raw());
  std::byte* recv = scratch(static_cast<std::size_t>(world_ * slot) * es);
  auto slot_of = [&](int p) { return recv + static_cast<std::size_t>(p * slot) * es; };
  std::vector<const void*> parts(static_cast<std::size_t>(world_));
  std::vector<Transfer> recvs, sends;
  for (std::int64_t p0 = 0; p0 < t.numel(); p0 += chunk) {
    const std::int64_t len = std::min(chunk, t.numel() - p0);
    const Block mine = block_of(len, world_, rank_);
    std::byte* my_block = base + static_cast<std::size_t>(p0 + mine.begin) * es;
    // 1. Every rank's copy of my block comes to me (empty blocks still send a message,
    //    so both sides always post the same messages).
    recvs.clear();
    sends.clear();
    for (int p = 0; p < world_; ++p) {
      if (p == rank_) continue;
      const Block b = block_of(len, world_, p);
      recvs.push_back({p, slot_of(p), static_cast<std::size_t>(mine.size) * es});
      sends.push_back({p, base + static_cast<std::size_t>(p0 + b.begin) * es,
                       static_cast<std::size_t>(b.size) * es});
    }
    exchange(comm_, recvs, sends, kTagReduce, "all_reduce");
    // 2. Fold in rank order; my own contribution is read in place.
    for (int p = 0; p < world_; ++p)
      parts[p] = p == rank_ ? static_cast<const void*>(my_block) : slot_of(p);
    detail::fold_in_rank_order(t.dtype(), op, parts.data(), world_, mine.size, my_block);
    // 3. The folded block goes to every rank; theirs come back into place.
    recvs.clear();
    sends.clear();
    for (int p = 0; p < world_; ++p) {
      if (p == rank_) continue;
      const Block b = block_of(len, world_, p);
      recvs.push_back({p, base + static_cast<std::size_t>(p0 + b.begin) * es,
                       static_cast<std::size_t>(b.size) * es});
      sends.push_back({p, my_block, static_cast<std::size_t>(mine.size) * es});
    }
    exchange(comm_, recvs, sends, kTagGather, "all_reduce");
  }
}

// Per step of chunk / world elements of the output block: every rank's matching slice
// of block `rank` comes here and is folded.
void MpiCommunicator::ordered_reduce_scatter(const Tensor& in, Tensor& out, ReduceOp op) {
  const std::size_t es = dtype_size(in.dtype());
  const std::int64_t m = out.numel();
  const std::int64_t step = (config().chunk_elems + world_ - 1) / world_;
  const std::byte* in_base = static_cast<const std::byte*>(in.raw());
  std::byte* out_base = static_cast<std::byte*>(out.raw());
  std::byte* recv = scratch(static_cast<std::size_t>(world_ * step) * es);
  auto slot_of = [&](int p) { return recv + static_cast<std::size_t>(p * step) * es; };
  // MPI_Isend takes a non-const buffer in older headers; it only reads it.
  auto in_at = [&](std::int64_t elem) {
    return const_cast<std::byte*>(in_base) + static_cast<std::size_t>(elem) * es;
  };
  std::vector<const void*> parts(static_cast<std::size_t>(world_));
  std::vector<Transfer> recvs, sends;
  for (std::int64_t c0 = 0; c0 < m; c0 += step) {
    const std::int64_t len = std::min(step, m - c0);
    const std::size_t bytes = static_cast<std::size_t>(len) * es;
    recvs.clear();
    sends.clear();
    for (int p = 0; p < world_; ++p) {
      if (p == rank_) continue;
      recvs.push_back({p, slot_of(p), bytes});
      sends.push_back({p, in_at(p * m + c0), bytes});
    }
    exchange(comm_, recvs, sends, kTagReduce, "reduce_scatter");
    for (int p = 0; p < world_; ++p)
      parts[p] = p == rank_ ? static_cast<const void*>(in_at(rank_ * m + c0)) : slot_of(p);
    // In place, out's slice is in's own slice: read before written, index by index.
    detail::fold_in_rank_order(in.dtype(), op, parts.data(), world_, len,
                               out_base + static_cast<std::size_t>(c0) * es);
  }
}

namespace {
void divide_by(void* data, DType t, std::int64_t n, int world) {
  if (t == DType::F64) {
    double* d = static_cast<double*>(data);
    for (std::int64_t i = 0; i < n; ++i) d[i] /= world;
  } else {
    float* f = static_cast<float*>(data);
    for (std::int64_t i = 0; i < n; ++i) f[i] /= static_cast<float>(world);
  }
}

void half_to_f32(DType t, const std::uint16_t* src, float* dst, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i)
    dst[i] = t == DType::BF16 ? bf16_to_f32(src[i]) : f16_to_f32(src[i]);
}
void f32_to_half(DType t, const float* src, std::uint16_t* dst, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i)
    dst[i] = t == DType::BF16 ? f32_to_bf16(src[i]) : f32_to_f16(src[i]);
}
}  // namespace

void MpiCommunicator::native_all_reduce(Tensor& t, ReduceOp op) {
  const std::int64_t n = t.numel();
  std::vector<float> wide;  // BF16/F16 reduce in FP32 and round once
  void* data = t.raw();
  DType rt = t.dtype();
  if (is_half(rt)) {
    wide.resize(static_cast<std::size_t>(n));
    half_to_f32(rt, static_cast<const std::uint16_t*>(data), wide.data(), n);
    data = wide.data();
    rt = DType::F32;
  }
  const std::size_t es = dtype_size(rt);
  for (std::int64_t c0 = 0; c0 < n; c0 += kNativeChunk)
    CHECK_MPI(MPI_Allreduce(
        MPI_IN_PLACE, static_cast<std::byte*>(data) + static_cast<std::size_t>(c0) * es,
        static_cast<int>(std::min(kNativeChunk, n - c0)), reduce_type(rt), mpi_op(op), comm_));
  if (op == ReduceOp::Avg) divide_by(data, rt, n, world_);
  if (!wide.empty()) f32_to_half(t.dtype(), wide.data(), static_cast<std::uint16_t*>(t.raw()), n);
}

void MpiCommunicator::native_reduce_scatter(const Tensor& in, Tensor& out, ReduceOp op) {
  const std::int64_t m = out.numel();
  const int count = to_int(m, "elements per rank", "reduce_scatter");
  DType rt = in.dtype();
  const void* src = in.raw();
  std::vector<float> wide_in;
  if (is_half(rt)) {
    wide_in.resize(static_cast<std::size_t>(in.numel()));
    half_to_f32(rt, static_cast<const std::uint16_t*>(src), wide_in.data(), in.numel());
    src = wide_in.data();
    rt = DType::F32;
  }
  // MPI forbids aliasing send and receive buffers: in place (or sharing storage at
  // all), and for 16-bit floats, reduce into a separate buffer first.
  const bool direct = !is_half(in.dtype()) && out.storage() != in.storage();
  const std::size_t bytes = static_cast<std::size_t>(m) * dtype_size(rt);
  void* dst = direct ? out.raw() : scratch(bytes);
  CHECK_MPI(MPI_Reduce_scatter_block(src, dst, count, reduce_type(rt), mpi_op(op), comm_));
  if (op == ReduceOp::Avg) divide_by(dst, rt, m, world_);
  if (is_half(in.dtype()))
    f32_to_half(in.dtype(), static_cast<const float*>(dst), static_cast<std::uint16_t*>(out.raw()),
                m);
  else if (!direct)
    std::memcpy(out.raw(), dst, bytes);
}

void MpiCommunicator::do_all_gather(const Tensor& in, Tensor& out, const Stream&) {
  const int count = to_int(in.numel(), "elements per rank", "all_gather");
  const MPI_Datatype type = move_type(in.dtype());
  // The base checks allow overlap only as "in is out's block rank": MPI_IN_PLACE.
  const bool in_place =
      in.storage() == out.storage() &&
      in.byte_offset() == out.byte_offset() + static_cast<std::size_t>(rank_) * in.nbytes();
  CHECK_MPI(MPI_Allgather(in_place ? MPI_IN_PLACE : in.raw(), count, type, out.raw(), count, type,
                          comm_));
}

void MpiCommunicator::do_broadcast(Tensor& t, int root, const Stream&) {
  const std::size_t es = dtype_size(t.dtype());
  const std::int64_t n = t.numel();
  for (std::int64_t c0 = 0; c0 < n; c0 += kNativeChunk)
    CHECK_MPI(MPI_Bcast(static_cast<std::byte*>(t.raw()) + static_cast<std::size_t>(c0) * es,
                        static_cast<int>(std::min(kNativeChunk, n - c0)), move_type(t.dtype()),
                        root, comm_));
}

void MpiCommunicator::do_all_to_all_v(const Tensor& in, std::span<const std::int64_t> send_counts,
                                      Tensor& out, std::span<const std::int64_t> recv_counts,
                                      const Stream&) {
  // A row as one MPI element keeps counts in rows (MoE moves tokens).
  std::int64_t row = 0;
  if (in.dim(0) > 0)
    row = in.numel() / in.dim(0);
  else if (out.dim(0) > 0)
    row = out.numel() / out.dim(0);
  std::vector<int> sc(world_, 0), sd(world_, 0), rc(world_, 0), rd(world_, 0);
  MPI_Datatype type = MPI_BYTE;
  if (row > 0) {  // otherwise this rank moves no bytes and every count stays 0
    std::int64_t s_off = 0, r_off = 0;
    for (int p = 0; p < world_; ++p) {
      sd[p] = to_int(s_off, "send row offset", "all_to_all_v");
      rd[p] = to_int(r_off, "receive row offset", "all_to_all_v");
      sc[p] = to_int(send_counts[p], "send rows", "all_to_all_v");
      rc[p] = to_int(recv_counts[p], "receive rows", "all_to_all_v");
      s_off += send_counts[p];
      r_off += recv_counts[p];
    }
    CHECK_MPI(MPI_Type_contiguous(to_int(row, "row elements", "all_to_all_v"),
                                  move_type(in.dtype()), &type));
    CHECK_MPI(MPI_Type_commit(&type));
  }
  const int rc_call = MPI_Alltoallv(in.raw(), sc.data(), sd.data(), type, out.raw(), rc.data(),
                                    rd.data(), type, comm_);
  if (row > 0) MPI_Type_free(&type);
  CHECK_MPI(rc_call);
}

void MpiCommunicator::do_barrier() {
  CHECK_MPI(MPI_Barrier(comm_));
}

}  // namespace crucible::dist
