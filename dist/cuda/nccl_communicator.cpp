// dist/cuda/nccl_communicator.cpp: NCCL collectives on GPU tensors, bootstrapped over
// MPI, with the rank-ordered deterministic reductions built from grouped
// point-to-point messages and a fold kernel.
//
// Invariant: in deterministic mode every element of a reduction is folded by exactly
// one rank, in rank order, by cuda::fold_rows_in_rank_order, and the other ranks
// receive those bits; so all ranks hold identical bits equal to reduce_in_rank_order().
// Both sides of every message compute its size from the same arguments (block_of,
// the counts), so a message of zero bytes is skipped by both.
// Reference: NCCL 2.28 user guide (ncclGroupStart/End around ncclSend/ncclRecv,
// in-place ReduceScatter: recvbuff == sendbuff + rank * recvcount; in-place AllGather:
// sendbuff == recvbuff + rank * sendcount), dist/mpi_communicator.cpp (same blocks).
#include "dist/cuda/nccl_communicator.h"

#include <cuda_runtime.h>
#include <nccl.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include "core/cuda_check.h"
#include "core/device_memory.h"
#include "dist/cuda/rank_fold_cuda.h"
#include "dist/mpi_env.h"
#include "dist/nccl_check.h"

namespace crucible::dist {

namespace {

cudaStream_t cuda_stream(void* handle) {
  return static_cast<cudaStream_t>(handle);
}

ncclDataType_t nccl_type(DType t) {
  switch (t) {
    case DType::F64: return ncclFloat64;
    case DType::F32: return ncclFloat32;
    case DType::BF16: return ncclBfloat16;
    case DType::F16: return ncclFloat16;
    case DType::I64: return ncclInt64;
    case DType::I32: return ncclInt32;
    case DType::U8: return ncclUint8;
    default: break;
  }
  CRUCIBLE_FAIL("no NCCL reduction type for ", dtype_name(t));
}

// Avg is a Sum here; the division by world follows on the device.
ncclRedOp_t nccl_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::Sum:
    case ReduceOp::Avg: return ncclSum;
    case ReduceOp::Max: return ncclMax;
    case ReduceOp::Min: return ncclMin;
  }
  return ncclSum;
}

// Block b of `len` elements split over `world` owners: sizes differ by at most one
// (the MPI backend's split; the bits do not depend on it).
struct Block {
  std::int64_t begin, size;
};
Block block_of(std::int64_t len, int world, int b) {
  const std::int64_t q = len / world, r = len % world;
  return {b * q + std::min<std::int64_t>(b, r), q + (b < r ? 1 : 0)};
}

// One message of a grouped exchange: bytes to or from `peer`.
struct Transfer {
  int peer;
  void* data;
  std::size_t bytes;
};

// Posts every transfer inside one NCCL group (so the order of sends and receives
// cannot deadlock) on `stream`. Zero-byte transfers are skipped, by both sides alike.
void exchange(ncclComm* comm, const std::vector<Transfer>& recvs,
              const std::vector<Transfer>& sends, cudaStream_t stream) {
  CHECK_NCCL(ncclGroupStart());
  for (const Transfer& s : sends)
    if (s.bytes > 0) CHECK_NCCL(ncclSend(s.data, s.bytes, ncclUint8, s.peer, comm, stream));
  for (const Transfer& r : recvs)
    if (r.bytes > 0) CHECK_NCCL(ncclRecv(r.data, r.bytes, ncclUint8, r.peer, comm, stream));
  CHECK_NCCL(ncclGroupEnd());
}

std::byte* at(const Tensor& t, std::int64_t elem) {
  return static_cast<std::byte*>(t.raw()) +
         static_cast<std::size_t>(elem) * dtype_size(t.dtype());
}

MPI_Comm world_comm_of(const MpiEnv& env) {
  return env.active() ? MPI_COMM_WORLD : MPI_COMM_NULL;
}

// "host|pci-bus-id" of this rank's GPU, padded to a fixed size for MPI_Allgather.
constexpr int kGpuIdBytes = 320;
std::string gpu_identity(int device) {
  char bus[64] = {0};
  CHECK_CUDA(cudaDeviceGetPCIBusId(bus, sizeof bus - 1, device));
  char host[256] = {0};
  if (::gethostname(host, sizeof host - 1) != 0) std::strcpy(host, "?");
  return std::string(host) + "|" + bus;
}

// Every rank learns every rank's (host, GPU); two ranks on one GPU is an error that
// every rank reports alike (so all throw, and the job ends, instead of NCCL hanging).
void check_one_gpu_per_rank(MPI_Comm comm, int rank, int world, Device gpu) {
  std::string mine = gpu_identity(gpu.index);
  mine.resize(kGpuIdBytes, '\0');
  std::vector<char> all(static_cast<std::size_t>(world) * kGpuIdBytes);
  CHECK_MPI(MPI_Allgather(mine.data(), kGpuIdBytes, MPI_CHAR, all.data(), kGpuIdBytes, MPI_CHAR,
                          comm));
  auto id_of = [&](int r) { return std::string(all.data() + static_cast<std::size_t>(r) * kGpuIdBytes); };
  for (int a = 0; a < world; ++a)
    for (int b = a + 1; b < world; ++b)
      if (id_of(a) == id_of(b)) {
        const std::string id = id_of(a);
        const std::size_t bar = id.find('|');
        CRUCIBLE_FAIL("ranks ", a, " and ", b, " both use the GPU at PCI ",
                      id.substr(bar + 1), " on host ", id.substr(0, bar), " (this is rank ",
                      rank, "): NCCL needs one GPU per rank. Start at most as many ranks per "
                      "node as it has visible GPUs (a rank uses GPU local_rank % visible), "
                      "or give each rank its own CUDA_VISIBLE_DEVICES");
      }
}

}  // namespace

NcclCommunicator::NcclCommunicator(const MpiEnv& env, Device gpu, CommunicatorConfig config)
    : Communicator(config), gpu_(gpu) {
  init(world_comm_of(env));
}

NcclCommunicator::NcclCommunicator(MPI_Comm comm, Device gpu, CommunicatorConfig config)
    : Communicator(config), gpu_(gpu) {
  CRUCIBLE_CHECK(comm != MPI_COMM_NULL, "NcclCommunicator: MPI_COMM_NULL is not a communicator");
  init(comm);
}

void NcclCommunicator::init(MPI_Comm comm) {
  const int visible = cuda_device_count();
  CRUCIBLE_USER_CHECK(gpu_.is_cuda(), "the NCCL communicator needs a CUDA device; got ",
                      gpu_.str());
  CRUCIBLE_USER_CHECK(visible > 0,
                      "the NCCL communicator found no visible CUDA device on this host "
                      "(check nvidia-smi and CUDA_VISIBLE_DEVICES)");
  CRUCIBLE_USER_CHECK(gpu_.index < visible, "the NCCL communicator was given ", gpu_.str(),
                      " but only ", visible, " CUDA device(s) are visible");
  if (comm != MPI_COMM_NULL) {
    CHECK_MPI(MPI_Comm_rank(comm, &rank_));
    CHECK_MPI(MPI_Comm_size(comm, &world_));
  }
  CHECK_CUDA(cudaSetDevice(gpu_.index));
  if (world_ > 1) check_one_gpu_per_rank(comm, rank_, world_, gpu_);

  ncclUniqueId id;
  std::memset(&id, 0, sizeof id);
  if (rank_ == 0) CHECK_NCCL(ncclGetUniqueId(&id));
  if (world_ > 1)
    CHECK_MPI(MPI_Bcast(&id, static_cast<int>(sizeof id), MPI_BYTE, 0, comm));
  const ncclResult_t rc = ncclCommInitRank(&comm_, world_, id, rank_);
  if (rc != ncclSuccess) {
    comm_ = nullptr;
    CRUCIBLE_FAIL("NCCL could not start on ", gpu_.str(), " (rank ", rank_, " of ", world_,
                  "): ncclCommInitRank: ", ncclGetErrorString(rc), " (", ncclGetLastError(nullptr),
                  "). Run with NCCL_DEBUG=WARN for NCCL's own report");
  }
  barrier_word_ = Tensor(Shape{1}, DType::I32, gpu_, "nccl.barrier");
  barrier_stream_ = Stream::create(gpu_);
}

NcclCommunicator::~NcclCommunicator() {
  if (!comm_) return;
  cudaSetDevice(gpu_.index);
  // While an exception unwinds the job is on its way to MPI_Abort: do not wait on
  // operations that peers may never join.
  if (std::uncaught_exceptions() > 0)
    ncclCommAbort(comm_);
  else
    ncclCommDestroy(comm_);
}

std::byte* NcclCommunicator::scratch(std::size_t bytes) {
  if (!scratch_.defined() || scratch_.nbytes() < bytes) {
    // Reductions may run on a stream not ordered with the default stream, where tensors
    // are allocated and freed (trainer/grad_overlap.h): the old buffer is freed only
    // once no reduction uses it, and the new one is in place before any may. (Rare: the
    // buffer grows to the largest element size reduced, then stays.)
    CHECK_CUDA(cudaDeviceSynchronize());
    scratch_ = Tensor(Shape{static_cast<std::int64_t>(bytes)}, DType::U8, gpu_, "nccl.scratch");
    CHECK_CUDA(cudaDeviceSynchronize());
  }
  return static_cast<std::byte*>(scratch_.raw());
}

// ---- Reductions.

void NcclCommunicator::do_all_reduce(Tensor& t, ReduceOp op, const Stream& stream) {
  CHECK_CUDA(cudaSetDevice(gpu_.index));
  if (reduction() == ReductionMode::Deterministic)
    ordered_all_reduce(t, op, stream.handle());
  else
    native_all_reduce(t, op, stream.handle());
}

void NcclCommunicator::do_reduce_scatter(const Tensor& in, Tensor& out, ReduceOp op,
                                         const Stream& stream) {
  CHECK_CUDA(cudaSetDevice(gpu_.index));
  if (reduction() == ReductionMode::Deterministic)
    ordered_reduce_scatter(in, out, op, stream.handle());
  else
    native_reduce_scatter(in, out, op, stream.handle());
}

// Per piece of chunk elements: every rank's copy of block `rank` comes here, is folded,
// and goes back to every rank. World 1 runs the same path (no messages; the fold of
// one row), so a single GPU tests the kernel and the bookkeeping.
void NcclCommunicator::ordered_all_reduce(Tensor& t, ReduceOp op, void* stream_handle) {
  const cudaStream_t stream = cuda_stream(stream_handle);
  const std::size_t es = dtype_size(t.dtype());
  const std::int64_t chunk = config().chunk_elems;
  const std::int64_t slot = (chunk + world_ - 1) / world_;  // >= every block of a piece
  std::byte* rows = scratch(static_cast<std::size_t>(world_ * slot) * es);  // [world, slot]
  auto row_of = [&](int p) { return rows + static_cast<std::size_t>(p * slot) * es; };
  std::vector<Transfer> recvs, sends;
  for (std::int64_t p0 = 0; p0 < t.numel(); p0 += chunk) {
    const std::int64_t len = std::min(chunk, t.numel() - p0);
    const Block mine = block_of(len, world_, rank_);
    std::byte* my_block = at(t, p0 + mine.begin);
    const std::size_t my_bytes = static_cast<std::size_t>(mine.size) * es;
    // 1. Every rank's copy of my block comes to row p; mine is copied to row rank.
    recvs.clear();
    sends.clear();
    for (int p = 0; p < world_; ++p) {
      if (p == rank_) continue;
      const Block b = block_of(len, world_, p);
      recvs.push_back({p, row_of(p), my_bytes});
      sends.push_back({p, at(t, p0 + b.begin), static_cast<std::size_t>(b.size) * es});
    }
    if (my_bytes > 0)
      CHECK_CUDA(cudaMemcpyAsync(row_of(rank_), my_block, my_bytes, cudaMemcpyDeviceToDevice,
                                 stream));
    exchange(comm_, recvs, sends, stream);
    // 2. Fold the rows in rank order into my block.
    cuda::fold_rows_in_rank_order(t.dtype(), op, rows, slot, world_, mine.size, my_block, world_,
                                  stream);
    // 3. My folded block goes to every rank; theirs come back into place.
    recvs.clear();
    sends.clear();
    for (int p = 0; p < world_; ++p) {
      if (p == rank_) continue;
      const Block b = block_of(len, world_, p);
      recvs.push_back({p, at(t, p0 + b.begin), static_cast<std::size_t>(b.size) * es});
      sends.push_back({p, my_block, my_bytes});
    }
    exchange(comm_, recvs, sends, stream);
  }
}

// Per step of chunk / world elements of the output block: every rank's matching slice
// of block `rank` comes to row p, mine to row rank, and the rows are folded into out.
// In place (out is in's block rank), out's slice is only written after this step's
// sends, and block rank is never sent.
void NcclCommunicator::ordered_reduce_scatter(const Tensor& in, Tensor& out, ReduceOp op,
                                              void* stream_handle) {
  const cudaStream_t stream = cuda_stream(stream_handle);
  const std::size_t es = dtype_size(in.dtype());
  const std::int64_t m = out.numel();
  const std::int64_t step = (config().chunk_elems + world_ - 1) / world_;
  std::byte* rows = scratch(static_cast<std::size_t>(world_ * step) * es);  // [world, step]
  auto row_of = [&](int p) { return rows + static_cast<std::size_t>(p * step) * es; };
  std::vector<Transfer> recvs, sends;
  for (std::int64_t c0 = 0; c0 < m; c0 += step) {
    const std::int64_t len = std::min(step, m - c0);
    const std::size_t bytes = static_cast<std::size_t>(len) * es;
    recvs.clear();
    sends.clear();
    for (int p = 0; p < world_; ++p) {
      if (p == rank_) continue;
      recvs.push_back({p, row_of(p), bytes});
      sends.push_back({p, at(in, p * m + c0), bytes});
    }
    CHECK_CUDA(cudaMemcpyAsync(row_of(rank_), at(in, rank_ * m + c0), bytes,
                               cudaMemcpyDeviceToDevice, stream));
    exchange(comm_, recvs, sends, stream);
    cuda::fold_rows_in_rank_order(in.dtype(), op, rows, step, world_, len, at(out, c0), world_,
                                  stream);
  }
}

void NcclCommunicator::native_all_reduce(Tensor& t, ReduceOp op, void* stream_handle) {
  const cudaStream_t stream = cuda_stream(stream_handle);
  CHECK_NCCL(ncclAllReduce(t.raw(), t.raw(), static_cast<std::size_t>(t.numel()),
                           nccl_type(t.dtype()), nccl_op(op), comm_, stream));
  if (op == ReduceOp::Avg)  // the fold of one row: sum / world, rounded once
    cuda::fold_rows_in_rank_order(t.dtype(), ReduceOp::Avg, t.raw(), t.numel(), 1, t.numel(),
                                  t.raw(), world_, stream);
}

void NcclCommunicator::native_reduce_scatter(const Tensor& in, Tensor& out, ReduceOp op,
                                             void* stream_handle) {
  const cudaStream_t stream = cuda_stream(stream_handle);
  // The base checks allow overlap only as NCCL's in-place form (out is in's block rank).
  CHECK_NCCL(ncclReduceScatter(in.raw(), out.raw(), static_cast<std::size_t>(out.numel()),
                               nccl_type(in.dtype()), nccl_op(op), comm_, stream));
  if (op == ReduceOp::Avg)
    cuda::fold_rows_in_rank_order(out.dtype(), ReduceOp::Avg, out.raw(), out.numel(), 1,
                                  out.numel(), out.raw(), world_, stream);
}

// ---- Data movement (bytes; exact in both modes).

void NcclCommunicator::do_all_gather(const Tensor& in, Tensor& out, const Stream& stream) {
  CHECK_CUDA(cudaSetDevice(gpu_.index));
  // The base checks allow overlap only as NCCL's in-place form (in is out's block rank).
  CHECK_NCCL(ncclAllGather(in.raw(), out.raw(), in.nbytes(), ncclUint8, comm_,
                           cuda_stream(stream.handle())));
}

void NcclCommunicator::do_broadcast(Tensor& t, int root, const Stream& stream) {
  CHECK_CUDA(cudaSetDevice(gpu_.index));
  CHECK_NCCL(ncclBroadcast(t.raw(), t.raw(), t.nbytes(), ncclUint8, root, comm_,
                           cuda_stream(stream.handle())));
}

void NcclCommunicator::do_all_to_all_v(const Tensor& in, std::span<const std::int64_t> send_counts,
                                       Tensor& out, std::span<const std::int64_t> recv_counts,
                                       const Stream& stream_in) {
  CHECK_CUDA(cudaSetDevice(gpu_.index));
  const cudaStream_t stream = cuda_stream(stream_in.handle());
  CRUCIBLE_CHECK(send_counts[rank_] == recv_counts[rank_], "all_to_all_v: rank ", rank_,
                 " sends ", send_counts[rank_], " rows to itself but expects ", recv_counts[rank_]);
  // Bytes per row (0 when both tensors are empty: then this rank moves nothing).
  std::size_t row = 0;
  if (in.dim(0) > 0)
    row = in.nbytes() / static_cast<std::size_t>(in.dim(0));
  else if (out.dim(0) > 0)
    row = out.nbytes() / static_cast<std::size_t>(out.dim(0));
  auto* src = static_cast<std::byte*>(in.raw());
  auto* dst = static_cast<std::byte*>(out.raw());
  std::vector<Transfer> recvs, sends;
  std::size_t s_off = 0, r_off = 0;  // in rows
  for (int p = 0; p < world_; ++p) {
    const auto sc = static_cast<std::size_t>(send_counts[p]);
    const auto rc = static_cast<std::size_t>(recv_counts[p]);
    if (p == rank_) {
      if (sc > 0 && row > 0)
        CHECK_CUDA(cudaMemcpyAsync(dst + r_off * row, src + s_off * row, sc * row,
                                   cudaMemcpyDeviceToDevice, stream));
    } else {
      sends.push_back({p, src + s_off * row, sc * row});
      recvs.push_back({p, dst + r_off * row, rc * row});
    }
    s_off += sc;
    r_off += rc;
  }
  exchange(comm_, recvs, sends, stream);
}

void NcclCommunicator::do_barrier() {
  CHECK_CUDA(cudaSetDevice(gpu_.index));
  // Every rank's host waits until every rank has enqueued this all-reduce and it ran.
  CHECK_NCCL(ncclAllReduce(barrier_word_.raw(), barrier_word_.raw(), 1, ncclInt32, ncclSum, comm_,
                           cuda_stream(barrier_stream_.handle())));
  barrier_stream_.synchronize();
}

}  // namespace crucible::dist
